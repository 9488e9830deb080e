"""Impress families of the scripted expert on real decks: live runs that the evaluator must score
1, and the judge refusing infeasible tasks (test_expert_families scores the untouched
originals)."""

from __future__ import annotations

import random

import pptx
import pytest

from cua.actions import Finished, Hotkey, to_call, validate
from cua.collect.expert.impress import FAMILIES, slide_title
from tests.expert_harness import propose_task, run_family

BY_NAME = {family.name: family for family in FAMILIES}
MALONEY = "au.asn.aes.www_conferences_2011_presentations_Fri_20Room4Level4_20930_20Maloney.pptx"

# family x real deck from ../shared/content/pptx where the family proposes a task (seed 0)
LIVE = [
    ("impress.retitle_slide", "themes.pptx"),           # 4:3, slide 7 of 10
    ("impress.retitle_slide", "60810.pptx"),            # 16:9, slide 15 of 28 (hidden slides too)
    ("impress.add_slide", "45541_Footer.pptx"),         # after a Title and Content slide
    ("impress.add_slide", "ececapstonespring2012.pptx"),  # after a blank-layout slide, no titles
    ("impress.delete_slide", "backgrounds.pptx"),       # the last slide
    ("impress.delete_slide", MALONEY),                  # slide 4 of 28, A4 size
]


def source(shared_content, name):
    return shared_content / "pptx" / name


def propose(family_name, path, seed=0):
    return propose_task(BY_NAME[family_name], path, seed)


def test_three_distinct_impress_families():
    assert len(FAMILIES) >= 3
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    assert all(f.app == "impress" and f.name.startswith("impress.") and "pptx" in f.kinds
               for f in FAMILIES)


@pytest.mark.parametrize("family_name,file", LIVE)
def test_proposal_is_grounded_and_plan_is_valid(family_name, file, shared_content):
    path = source(shared_content, file)
    task = propose(family_name, path)
    assert task.family == family_name and task.app == "impress" and task.content == file
    deck = pptx.Presentation(path)
    assert task.params["slide_count"] == len(deck.slides)
    number = task.params.get("slide", task.params.get("after"))
    assert 1 <= number <= len(deck.slides) and f"slide {number}" in task.instruction
    named = (task.params.get("old_title") or task.params.get("after_title")
             or task.params.get("title"))
    if family_name != "impress.add_slide" or task.params["after_title"]:
        assert named == slide_title(deck.slides[number - 1]) and named in task.instruction
    assert BY_NAME[family_name].judge(task, path).feasible
    plan = BY_NAME[family_name].plan(task)
    assert plan and all(step.thought.strip() and step.actions for step in plan)
    actions = [a for step in plan for a in step.actions]
    for action in actions:
        validate(action, 1920, 1080)
        to_call(action)
    # plans stop before saving: no ctrl+s, no finished()
    assert not any(isinstance(a, Finished) for a in actions)
    assert Hotkey(keys=["ctrl", "s"]) not in actions
    # one Page Down per slide to walk past
    assert actions.count(Hotkey(keys=["pagedown"])) == number - 1


def test_propose_returns_none_without_a_target(shared_content):
    # ececapstone's slides have no title placeholders at all
    path = source(shared_content, "ececapstonespring2012.pptx")
    assert BY_NAME["impress.retitle_slide"].propose(path, random.Random(0)) is None
    assert BY_NAME["impress.delete_slide"].propose(path, random.Random(0)) is None


def test_proposals_vary_with_the_seed(shared_content):
    path = source(shared_content, "60810.pptx")
    tasks = {BY_NAME["impress.retitle_slide"].propose(path, random.Random(seed)).instruction
             for seed in range(8)}
    assert len(tasks) > 3


def _with(task, **params):
    return task.model_copy(update={"params": {**task.params, **params}})


def test_judge_rejects_infeasible_retitles(shared_content):
    family, path = BY_NAME["impress.retitle_slide"], source(shared_content, "themes.pptx")
    task = propose(family.name, path)
    verdict = family.judge(_with(task, slide=99), path)
    assert not verdict.feasible and "no slide 99" in verdict.reason
    verdict = family.judge(task, source(shared_content, "backgrounds.pptx"))  # another deck
    assert not verdict.feasible, verdict.reason
    verdict = family.judge(_with(task, new_title=task.params["old_title"]), path)
    assert not verdict.feasible and "already" in verdict.reason


def test_judge_rejects_infeasible_new_slides(shared_content):
    family, path = BY_NAME["impress.add_slide"], source(shared_content, "themes.pptx")
    task = propose(family.name, path)
    verdict = family.judge(_with(task, title="Austin Theme"), path)  # slide 4's title
    assert not verdict.feasible and "already in the deck" in verdict.reason
    verdict = family.judge(_with(task, after=40, slide_count=10), path)
    assert not verdict.feasible and "no slide 40" in verdict.reason


def test_judge_rejects_infeasible_deletions(shared_content, tmp_path):
    family, path = BY_NAME["impress.delete_slide"], source(shared_content, "themes.pptx")
    task = propose(family.name, path)
    verdict = family.judge(_with(task, title="No Such Slide"), path)
    assert not verdict.feasible and "not 'No Such Slide'" in verdict.reason
    single = pptx.Presentation()
    single.slides.add_slide(single.slide_layouts[0]).shapes.title.text = task.params["title"]
    single.save(tmp_path / "single.pptx")
    verdict = family.judge(_with(task, slide=1), tmp_path / "single.pptx")
    assert not verdict.feasible and "at least one slide" in verdict.reason


@pytest.mark.desktop
@pytest.mark.parametrize("family_name,file", LIVE)
def test_family_succeeds_on_a_live_desktop(family_name, file, local_desktop, shared_content,
                                           tmp_path):
    family, path = BY_NAME[family_name], source(shared_content, file)
    task, result = run_family(local_desktop, family, path, tmp_path)
    assert result.score == 1, f"{task.instruction}\n{result}"
