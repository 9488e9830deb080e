"""Rule metrics over a presentation or a Word document: cua extensions that OSWorld does not have.

OSWorld scores Impress and Writer tasks against a gold file; these score a result against rules
instead, for tasks made without one. Both are called as `metric(result_path, rules)` with the rules
from a `{"type": "rule", "rules": {...}}` getter, take no options and read texts with runs of
whitespace (line breaks and vertical tabs too) collapsed to single spaces, rule texts alike.

`check_slides` (pptx) rules:

- `slide_count`: n — the deck has exactly n slides.
- `titles`: {"N": text} — slide N's (1-based) title placeholder reads exactly text.
- `slides_with`: {text: [N, …]} — exactly these slides hold a shape (or table cell) that reads
  exactly text; [] means no slide does.

`check_paragraphs` (docx) rules, over the body's non-empty paragraphs (tables left out):

- `last`: [text, …] — the document's final paragraphs read exactly these, in order.
- `count`: {text: n} — exactly n paragraphs read exactly text.
- `styles`: {text: style} — the first paragraph that reads exactly text has this paragraph style.

and over every story's text (body, tables, text boxes, headers, footers, notes, comments):

- `exclude`: [text, …] — none of these occurs anywhere, ignoring case (as Writer's default search).
- `words`: {word: n} — the word occurs exactly n times as a whole word, case sensitive.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from docx import Document
from pptx import Presentation

from cua.content.doctext import (
    clean,
    count_substring,
    count_word,
    slide_texts,
    slide_title,
    story_texts,
)
from cua.scoring.metrics.base import Score, fail

SLIDE_RULES = {"slide_count", "titles", "slides_with"}
PARAGRAPH_RULES = {"last", "count", "styles", "exclude", "words"}


def options_problem(options: Mapping[str, Any]) -> str | None:
    """The rule metrics take their rules from the expected getter, never options."""
    return f"rule metrics take no options, got {sorted(options)}" if options else None


def check_slides(result: str | None, rules: Mapping[str, Any]) -> float:
    """Score 1 when the presentation `result` meets every rule (see the module docstring)."""
    _known(rules, SLIDE_RULES, "check_slides")
    if result is None:
        return fail("no result presentation")
    try:
        slides = list(Presentation(result).slides)
    except Exception as e:  # noqa: BLE001 - a corrupt or foreign file: the task was not done
        return fail(f"{Path(result).name} cannot be read as a presentation: {e!r}")
    if "slide_count" in rules and len(slides) != rules["slide_count"]:
        return fail(f"{len(slides)} slides, expected {rules['slide_count']}")
    for number, title in rules.get("titles", {}).items():
        n = int(number)
        if not 1 <= n <= len(slides):
            return fail(f"there is no slide {n} (the deck has {len(slides)})")
        got = slide_title(slides[n - 1])
        if got != clean(title):
            return fail(f"slide {n}'s title is {got!r}, expected {clean(title)!r}")
    for text, numbers in rules.get("slides_with", {}).items():
        where = [n for n, slide in enumerate(slides, 1) if clean(text) in slide_texts(slide)]
        if where != sorted(numbers):
            return fail(f"{clean(text)!r} is on slides {where}, expected {sorted(numbers)}")
    return Score(1.0)


# -- Word documents ------------------------------------------------------------------------------


def check_paragraphs(result: str | None, rules: Mapping[str, Any]) -> float:
    """Score 1 when the Word document `result` meets every rule (see the module docstring)."""
    _known(rules, PARAGRAPH_RULES, "check_paragraphs")
    if result is None:
        return fail("no result document")
    try:
        paragraphs = [(clean(p.text), p.style.name if p.style is not None else None)
                      for p in Document(result).paragraphs]
        stories = story_texts(result) if {"exclude", "words"} & set(rules) else []
    except Exception as e:  # noqa: BLE001 - a corrupt or foreign file: the task was not done
        return fail(f"{Path(result).name} cannot be read as a document: {e!r}")
    texts = [text for text, _ in paragraphs if text]
    if "last" in rules:
        want = [clean(t) for t in rules["last"]]
        got = texts[max(len(texts) - len(want), 0):]
        if got != want:
            return fail(f"the document ends with {got}, expected {want}")
    for text, n in rules.get("count", {}).items():
        if texts.count(clean(text)) != n:
            return fail(f"{clean(text)!r} is {texts.count(clean(text))} paragraphs, expected {n}")
    for text, style in rules.get("styles", {}).items():
        styles = [s for t, s in paragraphs if t == clean(text)]
        if not styles:
            return fail(f"no paragraph reads {clean(text)!r}")
        if styles[0] != style:
            return fail(f"{clean(text)!r} has the style {styles[0]!r}, expected {style!r}")
    for text in rules.get("exclude", []):
        if count_substring(stories, text):
            return fail(f"{text!r} still occurs {count_substring(stories, text)} times")
    for word, n in rules.get("words", {}).items():
        if count_word(stories, word) != n:
            return fail(f"{word!r} occurs {count_word(stories, word)} times, expected {n}")
    return Score(1.0)


def _known(rules: Mapping[str, Any], known: set[str], metric: str) -> None:
    unknown = sorted(set(rules) - known)
    if unknown:
        raise ValueError(f"{metric}: unknown rules {unknown} (known: {sorted(known)})")
