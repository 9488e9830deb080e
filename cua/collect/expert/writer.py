"""Writer template families: append a paragraph, make a paragraph a Heading 1, replace a word.

Plans drive Writer from the freshly opened document (cursor at its start, 1920x1080) with the
keyboard where Writer has a shortcut (Ctrl+End, Ctrl+F, Ctrl+1, Ctrl+H, Alt+P) and with clicks
on the Find and Replace dialog's buttons, which LibreOffice centres on its window. Proposals and
judges read the docx (python-docx for paragraphs and styles, the raw WordprocessingML of every
story for word counts); evaluators score the saved file with check_paragraphs rules built from
what was read from the original at propose time."""

from __future__ import annotations

import random
import re
import zipfile
from pathlib import Path

import docx

from cua.actions import Click, Hotkey, Type
from cua.collect.expert.base import (
    ExpertStep,
    Family,
    feasible,
    infeasible,
    rule_evaluator,
)
from cua.content.doctext import (
    STORIES,
    W,
    clean,
    count_substring,
    count_word,
    story_texts,
)
from cua.records import Task, Verdict

REPLACE_ALL = Click(x=1225, y=510)   # "Replace All" in the Find and Replace dialog
CLOSE_DIALOG = Click(x=1253, y=778)  # its "Close" button


# Sentences Writer's autocorrect leaves as typed: capitalised start, no quotes, colons, dashes.
CLOSING_SENTENCES = (
    "This document was reviewed by the editorial team.",
    "Please send any corrections to the project office.",
    "Questions about this document can be sent to the secretariat.",
    "This version replaces all earlier drafts.",
    "Comments are welcome until the end of the month.",
    "The next revision is planned for the spring.",
)

# Words an editor plausibly swaps for another (lowercase keys; case follows the document).
SYNONYMS = {
    "believe": "think", "essay": "paper", "section": "part", "significant": "important",
    "formed": "shaped", "worldviews": "outlooks", "things": "matters", "writing": "drafting",
    "identities": "backgrounds", "should": "must", "shall": "must", "required": "mandatory",
    "located": "situated", "proposed": "planned", "provided": "supplied", "changes": "amendments",
    "earning": "making", "employed": "hired", "budget": "plan", "total": "sum", "cash": "money",
    "deductions": "withholdings", "single": "unmarried", "church": "parish", "retired": "emeritus",
    "neighbourhood": "neighborhood", "random": "stochastic", "variables": "factors",
    "constant": "fixed", "between": "among", "place": "location", "certain": "particular",
    "pendant": "ornament", "table": "grid", "default": "standard", "style": "format",
    "text": "content", "some": "several", "large": "big", "serves": "works", "rate": "fee",
    "access": "entry", "magna": "parva", "donec": "nullam", "fusce": "etiam", "purus": "nisl",
    "felis": "risus", "tristique": "faucibus", "malesuada": "vulputate", "nonummy": "lacinia",
    "colour": "color", "organisation": "organization", "programme": "program",
    "customer": "client", "customers": "clients", "students": "learners", "student": "learner",
    "company": "firm", "project": "initiative", "projects": "initiatives", "meeting": "session",
    "members": "participants", "member": "participant", "report": "review", "children": "kids",
    "important": "essential", "people": "persons", "information": "details",
}


# -- reading documents ---------------------------------------------------------------------------

def _open(path: Path):
    try:
        return docx.Document(str(path))
    except Exception:  # noqa: BLE001 - a file python-docx cannot read offers no target
        return None


def has_tracked_changes(path: Path) -> bool:
    """Whether any story holds tracked insertions or deletions (Writer's search treats deleted
    text differently from a plain reading of the XML, so counts would not line up)."""
    with zipfile.ZipFile(path) as package:
        return any(re.search(rb"<w:(ins|del|moveFrom|moveTo)\b", package.read(name))
                   for name in package.namelist() if STORIES.fullmatch(name))


def _readable(path: Path):
    try:
        return _open(path), story_texts(path)
    except Exception:  # noqa: BLE001 - zip or XML errors: nothing to work on
        return None, []


def _last_text(document) -> str | None:
    texts = [clean(p.text) for p in document.paragraphs if clean(p.text)]
    return texts[-1] if texts else None


def _blocks(document) -> list:
    """The body's paragraphs and tables in order (the section properties left out)."""
    return [child for child in document.element.body.iterchildren()
            if child.tag != f"{W}sectPr"]


def _starts_with_table(document) -> bool:
    blocks = _blocks(document)
    return bool(blocks) and blocks[0].tag == f"{W}tbl"


def _ends_with_table(document) -> bool:
    """Ctrl+End lands in the last table's last cell: Enter there adds to the cell, not the body."""
    blocks = _blocks(document)
    return bool(blocks) and blocks[-1].tag == f"{W}tbl"


# -- families ------------------------------------------------------------------------------------

class WriterFamily(Family):
    """Shared by the Writer families: reading the document and the texts of its stories, task
    building. Subclasses implement `_propose` and `_judge` on the opened document."""

    app = "writer"
    kinds = ("docx",)

    def propose(self, path: Path, rng: random.Random) -> Task | None:
        document, texts = _readable(path)
        return None if document is None else self._propose(document, texts, path, rng)

    def _propose(self, document, texts: list[str], path: Path, rng: random.Random) -> Task | None:
        raise NotImplementedError

    def judge(self, task: Task, path: Path) -> Verdict:
        document, texts = _readable(path)
        if document is None:
            return infeasible(f"{path.name} cannot be read as a document")
        return self._judge(task, path, document, texts)

    def _judge(self, task: Task, path: Path, document, texts: list[str]) -> Verdict:
        """The family's own preconditions, on the opened document and its stories' texts."""
        raise NotImplementedError

    def _task(self, path: Path, instruction: str, params: dict) -> Task:
        key = params.get("paragraph", params.get("word", ""))
        return Task(id=f"{self.name}:{path.stem}:{key}", instruction=instruction, app=self.app,
                    content=path.name, family=self.name, params=params)


class AppendParagraph(WriterFamily):
    """Add a closing paragraph with a given sentence at the very end of the document."""

    name = "writer.append_paragraph"

    def _propose(self, document, texts: list[str], path: Path, rng: random.Random) -> Task | None:
        if _last_text(document) is None or _ends_with_table(document):
            return None
        fresh = [s for s in CLOSING_SENTENCES if count_substring(texts, s) == 0]
        if not fresh:
            return None
        sentence = rng.choice(fresh)
        instruction = rng.choice([
            f"Add a new paragraph at the end of the document that says: {sentence}",
            f"Append the sentence '{sentence}' as a new final paragraph.",
            f"At the very end of this document, add a paragraph reading '{sentence}'",
        ])
        return self._task(path, instruction, {
            "text": sentence, "previous_last": _last_text(document),
            "starts_with_table": _starts_with_table(document)})

    def _judge(self, task: Task, path: Path, document, texts: list[str]) -> Verdict:
        last = _last_text(document)
        if last is None:
            return infeasible("the document has no text to append after")
        if _ends_with_table(document):
            return infeasible("the document ends with a table")
        if count_substring(texts, task.params["text"]):
            return infeasible("the sentence is already in the document")
        if last != task.params["previous_last"]:
            return infeasible(f"the document ends with {last[:60]!r}, not the paragraph the "
                              "task was written for")
        return feasible(f"the document ends with {last[:60]!r}")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        # In a table cell Ctrl+End first jumps to the cell's and the table's end.
        ends = [Hotkey(keys=["ctrl", "end"]) for _ in range(3 if p["starts_with_table"] else 1)]
        return [
            ExpertStep(thought="The document is open in LibreOffice Writer with the cursor at its "
                               "start. I need to add a paragraph after the last one, so I press "
                               "Ctrl+End to move the cursor to the end of the document.",
                       actions=ends),
            ExpertStep(thought="The cursor is at the end of the last paragraph. I press Enter to "
                               "start a new paragraph and type the sentence.",
                       actions=[Hotkey(keys=["enter"]), Type(content=p["text"])]),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        p = task.params
        return rule_evaluator("check_paragraphs", remote, {
            "last": [p["previous_last"], p["text"]], "count": {p["text"]: 1}})


class HeadingParagraph(WriterFamily):
    """Give a short body paragraph (a heading in all but style) the Heading 1 style."""

    name = "writer.heading"

    @staticmethod
    def _is_candidate(paragraph, texts: list[str]) -> bool:
        """A short line that reads like a heading: a plain paragraph, or a lower-level heading
        to promote; its text occurs once in the document, so a search finds exactly it."""
        text = paragraph.text.strip()
        style = paragraph.style.name if paragraph.style is not None else ""
        ppr = paragraph._p.pPr
        plain = not re.match(r"(heading|title|subtitle|toc|caption)", style, re.IGNORECASE)
        return (3 <= len(text) <= 60 and len(text.split()) <= 6
                and re.fullmatch(r"[A-Z0-9][A-Za-z0-9 '&()-]*[A-Za-z0-9)]", text) is not None
                and (plain or re.fullmatch(r"Heading [2-9]", style) is not None)
                and (ppr is None or ppr.numPr is None)
                and count_substring(texts, text) == 1)

    def _propose(self, document, texts: list[str], path: Path, rng: random.Random) -> Task | None:
        paragraphs = document.paragraphs
        candidates = [i for i, p in enumerate(paragraphs) if self._is_candidate(p, texts)]
        if not candidates:
            return None
        index = rng.choice(candidates)
        text = paragraphs[index].text.strip()
        style = paragraphs[index].style.name if paragraphs[index].style is not None else None
        if style and style.startswith("Heading "):
            instruction = rng.choice([
                f"Promote the {style} '{text}' to a Heading 1.",
                f"Change the heading '{text}' from {style} to Heading 1.",
            ])
        else:
            instruction = rng.choice([
                f"Format the line '{text}' as a Heading 1.",
                f"Apply the Heading 1 paragraph style to the paragraph '{text}'.",
                f"Make '{text}' a level-1 heading (Heading 1 style).",
            ])
        return self._task(path, instruction, {
            "paragraph": index, "text": text, "style": style})

    def _judge(self, task: Task, path: Path, document, texts: list[str]) -> Verdict:
        p = task.params
        matches = [x for x in document.paragraphs if x.text.strip() == p["text"]]
        if not matches:
            return infeasible(f"no paragraph reads '{p['text']}'")
        if count_substring(texts, p["text"]) != 1:
            return infeasible(f"'{p['text']}' occurs more than once, so a search cannot single "
                              "out the paragraph")
        if matches[0].style is not None and matches[0].style.name == "Heading 1":
            return infeasible("the paragraph is already a Heading 1")
        return feasible(f"'{p['text']}' is a {p['style']} paragraph")

    def plan(self, task: Task) -> list[ExpertStep]:
        text = task.params["text"]
        return [
            ExpertStep(thought=f"The document is open in LibreOffice Writer. I need to make the "
                               f"paragraph '{text}' a Heading 1. To find it I open the Find "
                               "toolbar with Ctrl+F.", actions=[Hotkey(keys=["ctrl", "f"])]),
            ExpertStep(thought="The Find toolbar is open at the bottom with the cursor in its "
                               "search box. I type the paragraph's text and press Enter to jump "
                               "to it.", actions=[Type(content=text), Hotkey(keys=["enter"])]),
            ExpertStep(thought=f"'{text}' is found and selected in the document. Escape closes "
                               "the Find toolbar and puts the focus back in the text with the "
                               "selection kept.", actions=[Hotkey(keys=["esc"])]),
            ExpertStep(thought="The cursor is in the paragraph. Ctrl+1 applies the Heading 1 "
                               "paragraph style to it.", actions=[Hotkey(keys=["ctrl", "1"])]),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        return rule_evaluator("check_paragraphs", remote,
                              {"styles": {task.params["text"]: "Heading 1"}})


class ReplaceWord(WriterFamily):
    """Replace every occurrence of a word with another through Find and Replace."""

    name = "writer.replace_word"

    @staticmethod
    def _candidates(path: Path, texts: list[str]) -> list[tuple[str, str, int]]:
        main = story_texts(path, main_only=True)
        counts: dict[str, int] = {}
        for text in main:
            for word in re.findall(r"(?<![^\W_])[A-Za-z]{4,}(?![^\W_])", text):
                counts[word] = counts.get(word, 0) + 1
        out = []
        for word, n in sorted(counts.items()):
            target = SYNONYMS.get(word.lower())
            if target is None or not 2 <= n <= 40:
                continue
            if word[0].isupper():
                target = target.upper() if word.isupper() else target.capitalize()
            elif not word.islower():
                continue
            # Every case-insensitive hit of the word, in any story, is this exact whole word
            # in the main text, so Writer's default search replaces exactly these n.
            if (count_substring(texts, word) == n and count_word(main, word) == n
                    and word.lower() not in target.lower() and count_substring(texts, target) == 0):
                out.append((word, target, n))
        return out

    def _propose(self, document, texts: list[str], path: Path, rng: random.Random) -> Task | None:
        if has_tracked_changes(path):
            return None
        candidates = self._candidates(path, texts)
        if not candidates:
            return None
        word, target, n = rng.choice(candidates)
        instruction = rng.choice([
            f"Replace every occurrence of the word '{word}' with '{target}' in this document.",
            f"Change all instances of '{word}' to '{target}' throughout the document.",
            f"Use Find and Replace to swap '{word}' for '{target}' everywhere in the text.",
        ])
        return self._task(path, instruction, {"word": word, "replacement": target, "count": n})

    def _judge(self, task: Task, path: Path, document, texts: list[str]) -> Verdict:
        p = task.params
        if has_tracked_changes(path):
            return infeasible("the document has tracked changes, so deleted text would hide or "
                              "add occurrences")
        found = count_substring(texts, p["word"])
        if found == 0:
            return infeasible(f"'{p['word']}' does not occur in the document")
        if found != p["count"]:
            return infeasible(f"'{p['word']}' occurs {found} times, the task was written for "
                              f"{p['count']}")
        if count_substring(texts, p["replacement"]):
            return infeasible(f"'{p['replacement']}' is already in the document, so the result "
                              "could not be told apart")
        return feasible(f"'{p['word']}' occurs {found} times")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        return [
            ExpertStep(thought=f"The document is open in LibreOffice Writer. I need to replace "
                               f"every '{p['word']}' with '{p['replacement']}', so I open the Find "
                               "and Replace dialog with Ctrl+H.",
                       actions=[Hotkey(keys=["ctrl", "h"])]),
            ExpertStep(thought="The Find and Replace dialog is open with the cursor in the Find "
                               f"box. I type the word to look for, '{p['word']}'.",
                       actions=[Type(content=p["word"])]),
            ExpertStep(thought="Alt+P moves to the Replace box, where I type the new word "
                               f"'{p['replacement']}'.",
                       actions=[Hotkey(keys=["alt", "p"]), Type(content=p["replacement"])]),
            ExpertStep(thought="Both boxes are filled in. I click Replace All to change every "
                               "occurrence at once.", actions=[REPLACE_ALL]),
            ExpertStep(thought=f"The dialog says the search key was replaced {p['count']} times. "
                               "I close the dialog.", actions=[CLOSE_DIALOG]),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        p = task.params
        return rule_evaluator("check_paragraphs", remote, {
            "exclude": [p["word"]], "words": {p["replacement"]: p["count"]}})


FAMILIES: list[Family] = [AppendParagraph(), HeadingParagraph(), ReplaceWord()]

__all__ = ["FAMILIES", "AppendParagraph", "HeadingParagraph", "ReplaceWord"]
