"""Impress template families: retitle a slide, add a titled slide, delete a slide.

Plans drive Impress from the freshly opened deck (slide 1 in the normal view, 1920x1080):
a click on the grey margin left of the slide gives the editing view the keyboard focus with
nothing selected, and then Page Down steps one slide forward. With no object selected, Tab
selects the slide's first object (in drawing order) and Enter starts editing its text.
Evaluators score the saved deck with check_slides rules built from what was read from the
original at propose time (stored in ``task.params``)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pptx

from cua.actions import Click, Hotkey, Type
from cua.collect.expert.base import (
    ExpertStep,
    Family,
    feasible,
    infeasible,
    rule_evaluator,
)
from cua.content.doctext import clean, is_title, slide_texts, slide_title
from cua.records import Task, Verdict

# The grey margin left of the slide, inside the editing view, for every slide shape up to 16:9.
# Clicking there focuses the editing view and selects nothing. (Clicking into a text box and
# leaving it with Escape is not the same: Impress 7.4 then makes the next text edit's selection
# follow the mouse pointer, so Ctrl+A stops at the character under the pointer.)
MARGIN = Click(x=195, y=540)
LAYOUT_ITEM = Click(x=293, y=131)           # "Layout" in the open Slide menu (opens its submenu)
TITLE_CONTENT_LAYOUT = Click(x=632, y=206)  # "Title, Content" in the Slide > Layout submenu
SLIDE_MENU = Click(x=266, y=30)    # "Slide" in Impress's menu bar
DELETE_SLIDE = Click(x=311, y=156)  # "Delete Slide" in the open Slide menu
MAX_SLIDE = 20                     # plans step there with Page Down; keep them short

# Titles that Impress's autocorrect leaves as typed (capitalised words, no quotes or colons).
NEW_TITLES = (
    "Quarterly Review", "Next Steps", "Key Findings", "Budget Overview", "Open Questions",
    "Project Timeline", "Lessons Learned", "Summary of Results", "Risks and Mitigations",
    "Team Responsibilities", "Action Items", "Background and Context",
)


# -- reading decks -------------------------------------------------------------------------------

def _open(path: Path):
    try:
        return pptx.Presentation(str(path))
    except Exception:  # noqa: BLE001 - a deck python-pptx cannot read offers no target
        return None


def first_shape_title(slide) -> str | None:
    """The title's clean text when the title placeholder is the slide's first object (the one
    Tab selects first), else None."""
    shapes = list(slide.shapes)
    if shapes and is_title(shapes[0]) and shapes[0].has_text_frame:
        return clean(shapes[0].text_frame.text)
    return None


def _deck_texts(deck) -> set[str]:
    return {t.casefold() for slide in deck.slides for t in slide_texts(slide)}


def _plain_title(title: str | None) -> bool:
    """A title worth naming in an instruction: present, short, printable."""
    return (bool(title) and len(title) <= 70 and title.isprintable()
            and not re.search(r"\s{2}", title))


# -- plan pieces ---------------------------------------------------------------------------------

def _go_to_slide(number: int, title: str | None, purpose: str) -> list[ExpertStep]:
    """Steps from the freshly opened deck (slide 1) to slide `number` in the editing view."""
    label = f"slide {number}" + (f" ('{title}')" if title else "")
    steps = [
        ExpertStep(thought=f"The presentation is open in LibreOffice Impress on slide 1. {purpose} "
                           "First I click on the empty grey area left of the slide, so the editing "
                           "area has the keyboard focus and nothing on the slide is selected.",
                   actions=[MARGIN]),
    ]
    if number > 1:
        presses = number - 1
        steps.append(ExpertStep(
            thought=f"Nothing is selected, so Page Down moves to the next slide. I press it "
                    f"{presses} time{'s' if presses > 1 else ''} to reach {label}.",
            actions=[Hotkey(keys=["pagedown"]) for _ in range(presses)]))
    return steps


def _leave_text(thought: str) -> ExpertStep:
    return ExpertStep(thought=thought, actions=[Hotkey(keys=["esc"]), Hotkey(keys=["esc"])])


def _pick_new_title(deck, rng: random.Random) -> str:
    taken = _deck_texts(deck)
    choices = [t for t in NEW_TITLES if t.casefold() not in taken]
    return rng.choice(choices or list(NEW_TITLES))


# -- families ------------------------------------------------------------------------------------

class ImpressFamily(Family):
    """Shared by the Impress families: reading the deck, task building. Subclasses implement
    `_propose` and `_judge` on the opened deck."""

    app = "impress"
    kinds = ("pptx",)

    def propose(self, path: Path, rng: random.Random) -> Task | None:
        deck = _open(path)
        return None if deck is None else self._propose(deck, path, rng)

    def _propose(self, deck, path: Path, rng: random.Random) -> Task | None:
        raise NotImplementedError

    def judge(self, task: Task, path: Path) -> Verdict:
        deck = _open(path)
        if deck is None:
            return infeasible(f"{path.name} cannot be read as a presentation")
        return self._judge(task, deck, list(deck.slides))

    def _judge(self, task: Task, deck, slides: list) -> Verdict:
        """The family's own preconditions, on the opened deck and its slides."""
        raise NotImplementedError

    def _task(self, path: Path, instruction: str, params: dict) -> Task:
        key = "-".join(str(v) for k, v in sorted(params.items()) if k in ("slide", "after"))
        return Task(id=f"{self.name}:{path.stem}:{key}", instruction=instruction, app=self.app,
                    content=path.name, family=self.name, params=params)


class RetitleSlide(ImpressFamily):
    """Replace the title text of slide N with a new title."""

    name = "impress.retitle_slide"

    @staticmethod
    def _candidates(deck) -> list[int]:
        slides = list(deck.slides)
        return [i + 1 for i, s in enumerate(slides[:MAX_SLIDE])
                if _plain_title(first_shape_title(s))]

    def _propose(self, deck, path: Path, rng: random.Random) -> Task | None:
        candidates = self._candidates(deck)
        if not candidates:
            return None
        number = rng.choice(candidates)
        slide = list(deck.slides)[number - 1]
        old, new = first_shape_title(slide), _pick_new_title(deck, rng)
        instruction = rng.choice([
            f"Change the title of slide {number} from '{old}' to '{new}'.",
            f"Retitle slide {number} (currently '{old}') so that its title reads '{new}'.",
            f"On slide {number}, replace the title '{old}' with '{new}'.",
        ])
        return self._task(path, instruction, {"slide": number, "old_title": old,
                                              "new_title": new, "slide_count": len(deck.slides)})

    def _judge(self, task: Task, deck, slides: list) -> Verdict:
        p = task.params
        if not 1 <= p["slide"] <= len(slides):
            return infeasible(f"the deck has {len(slides)} slides, so there is no slide "
                              f"{p['slide']}")
        slide = slides[p["slide"] - 1]
        title = slide_title(slide)
        if title is None:
            return infeasible(f"slide {p['slide']} has no title placeholder")
        if title != p["old_title"]:
            return infeasible(f"slide {p['slide']}'s title is '{title}', not '{p['old_title']}'")
        if first_shape_title(slide) is None:
            return infeasible(f"the title is not the first object of slide {p['slide']}, so Tab "
                              "would not select it")
        if title == p["new_title"]:
            return infeasible("the slide already has the new title")
        return feasible(f"slide {p['slide']} has the title '{title}' as its first object")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        return [
            *_go_to_slide(p["slide"], p["old_title"],
                          f"I need to change the title of slide {p['slide']}."),
            ExpertStep(thought=f"Slide {p['slide']} with the title '{p['old_title']}' is in the "
                               "editing area. The title is the first object on the slide, so Tab "
                               "selects it and Enter puts the cursor into its text.",
                       actions=[Hotkey(keys=["tab"]), Hotkey(keys=["enter"])]),
            ExpertStep(thought="I am editing the title text now. I select all of it with Ctrl+A "
                               f"and type the new title '{p['new_title']}' over it.",
                       actions=[Hotkey(keys=["ctrl", "a"]), Type(content=p["new_title"])]),
            _leave_text(f"The title now reads '{p['new_title']}'. I press Escape twice to leave "
                        "the text and deselect the title box."),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        p = task.params
        return rule_evaluator("check_slides", remote, {
            "slide_count": p["slide_count"], "titles": {str(p["slide"]): p["new_title"]}})


class AddSlide(ImpressFamily):
    """Insert a new slide after slide N and give it a title."""

    name = "impress.add_slide"

    def _propose(self, deck, path: Path, rng: random.Random) -> Task | None:
        slides = list(deck.slides)
        if not slides:
            return None
        # Name the slide the new one follows by its title when it has a readable one.
        titled = [i + 1 for i, s in enumerate(slides[:MAX_SLIDE]) if _plain_title(slide_title(s))]
        number = rng.choice(titled or list(range(1, min(len(slides), MAX_SLIDE) + 1)))
        after_title = slide_title(slides[number - 1]) if titled else None
        title = _pick_new_title(deck, rng)
        where = f"slide {number}" + (f" ('{after_title}')" if after_title else "")
        instruction = rng.choice([
            f"Insert a new slide right after {where} and give it the title '{title}'.",
            f"Add a slide titled '{title}' directly after {where}.",
            f"Create a new slide after {where} whose title is '{title}'.",
        ])
        return self._task(path, instruction, {"after": number, "after_title": after_title,
                                              "title": title, "slide_count": len(slides)})

    def _judge(self, task: Task, deck, slides: list) -> Verdict:
        p = task.params
        if len(slides) != p["slide_count"]:
            return infeasible(f"the deck has {len(slides)} slides, the task was written for "
                              f"{p['slide_count']}")
        if not 1 <= p["after"] <= len(slides):
            return infeasible(f"there is no slide {p['after']} to insert after")
        if p["after_title"] is not None and slide_title(slides[p["after"] - 1]) != p["after_title"]:
            return infeasible(f"slide {p['after']} is not titled '{p['after_title']}'")
        if p["title"].casefold() in _deck_texts(deck):
            return infeasible(f"'{p['title']}' is already in the deck")
        return feasible(f"slide {p['after']} exists and '{p['title']}' is new")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        after = f"slide {p['after']}" + (f" ('{p['after_title']}')" if p["after_title"] else "")
        return [
            *_go_to_slide(p["after"], p["after_title"],
                          f"I need a new slide after {after}."),
            ExpertStep(thought=f"{after[0].upper() + after[1:]} is in the editing area. Ctrl+M "
                               "(Slide > New Slide) inserts a new slide right after it.",
                       actions=[Hotkey(keys=["ctrl", "m"])]),
            ExpertStep(thought=f"A new slide {p['after'] + 1} appeared. It copies the layout of "
                               "the slide before it, which may have no title, so I give it the "
                               "'Title, Content' layout. I open the Slide menu.",
                       actions=[SLIDE_MENU]),
            ExpertStep(thought="The Slide menu is open. I click Layout to open its submenu.",
                       actions=[LAYOUT_ITEM]),
            ExpertStep(thought="The Layout submenu lists the layouts. I click 'Title, Content'.",
                       actions=[TITLE_CONTENT_LAYOUT]),
            ExpertStep(thought="The new slide shows 'Click to add Title' and 'Click to add Text'. "
                               "I click on the grey area left of the slide so the editing area has "
                               "the focus with nothing selected.", actions=[MARGIN]),
            ExpertStep(thought="Nothing is selected. Tab selects the title placeholder, the first "
                               "object on the slide, and Enter starts typing in it.",
                       actions=[Hotkey(keys=["tab"]), Hotkey(keys=["enter"])]),
            ExpertStep(thought=f"The cursor is in the title placeholder. I type '{p['title']}'.",
                       actions=[Type(content=p["title"])]),
            _leave_text(f"The new slide is titled '{p['title']}'. I press Escape twice to leave "
                        "the text box and deselect it."),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        p = task.params
        new = p["after"] + 1
        return rule_evaluator("check_slides", remote, {
            "slide_count": p["slide_count"] + 1, "titles": {str(new): p["title"]},
            "slides_with": {p["title"]: [new]}})


class DeleteSlide(ImpressFamily):
    """Delete slide N (named by its unique title)."""

    name = "impress.delete_slide"

    @staticmethod
    def _candidates(deck) -> list[int]:
        slides = list(deck.slides)
        if len(slides) < 2:
            return []
        counts: dict[str, int] = {}
        for slide in slides:
            for text in set(slide_texts(slide)):
                counts[text] = counts.get(text, 0) + 1
        out = []
        for i, slide in enumerate(slides[:MAX_SLIDE]):
            title = first_shape_title(slide)
            following = first_shape_title(slides[i + 1]) if i + 1 < len(slides) else None
            if (_plain_title(title) and counts.get(title) == 1
                    and (i + 1 == len(slides) or (following and counts.get(following) == 1))):
                out.append(i + 1)
        return out

    def _propose(self, deck, path: Path, rng: random.Random) -> Task | None:
        candidates = self._candidates(deck)
        if not candidates:
            return None
        number = rng.choice(candidates)
        slides = list(deck.slides)
        title = first_shape_title(slides[number - 1])
        following = first_shape_title(slides[number]) if number < len(slides) else None
        instruction = rng.choice([
            f"Delete slide {number}, the one titled '{title}'.",
            f"Remove the slide '{title}' (slide {number}) from the presentation.",
            f"The slide '{title}' (slide {number}) is no longer needed; delete it.",
        ])
        return self._task(path, instruction, {"slide": number, "title": title,
                                              "next_title": following, "slide_count": len(slides)})

    def _judge(self, task: Task, deck, slides: list) -> Verdict:
        p = task.params
        if len(slides) < 2:
            return infeasible("a presentation keeps at least one slide")
        if not 1 <= p["slide"] <= len(slides):
            return infeasible(f"the deck has {len(slides)} slides, so there is no slide "
                              f"{p['slide']}")
        title = slide_title(slides[p["slide"] - 1])
        if title != p["title"]:
            return infeasible(f"slide {p['slide']} is titled {title!r}, not '{p['title']}'")
        others = [i + 1 for i, s in enumerate(slides) if i != p["slide"] - 1
                  and p["title"] in slide_texts(s)]
        if others:
            return infeasible(f"'{p['title']}' also appears on slides {others}")
        return feasible(f"slide {p['slide']} is the only slide titled '{title}'")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        return [
            *_go_to_slide(p["slide"], p["title"], f"I need to delete slide {p['slide']}."),
            ExpertStep(thought=f"Slide {p['slide']} '{p['title']}' is in the editing area. I open "
                               "the Slide menu in the menu bar.", actions=[SLIDE_MENU]),
            ExpertStep(thought="The Slide menu is open. I click Delete Slide to remove the slide "
                               "I am on.", actions=[DELETE_SLIDE]),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        p = task.params
        where = {p["title"]: []}
        if p["next_title"] is not None:  # the slide after it moves up into its place
            where[p["next_title"]] = [p["slide"]]
        return rule_evaluator("check_slides", remote, {"slide_count": p["slide_count"] - 1,
                                                       "slides_with": where})


FAMILIES: list[Family] = [RetitleSlide(), AddSlide(), DeleteSlide()]

__all__ = ["FAMILIES", "AddSlide", "DeleteSlide", "RetitleSlide"]
