"""Writer families of the scripted expert on real documents: live runs that the evaluator must
score 1, and the judge refusing infeasible tasks (test_expert_families scores the untouched
originals)."""

from __future__ import annotations

import random

import docx
import pytest

from cua.actions import Finished, Hotkey, to_call, validate
from cua.collect.expert.writer import FAMILIES, count_word, story_texts
from tests.expert_harness import propose_task, run_family, score

BY_NAME = {family.name: family for family in FAMILIES}

# family x real document from ../shared/content/docx where the family proposes a task (seed 0)
LIVE = [
    ("writer.append_paragraph", "sample.docx"),
    ("writer.append_paragraph", "stress011.docx"),      # starts with a table, right-to-left text
    ("writer.heading", "61787.docx"),                   # promote a Heading 3
    ("writer.heading", "Bug51170.docx"),                # a plain Normal line
    ("writer.replace_word", "61787.docx"),
    ("writer.replace_word", "IllustrativeCases.docx"),  # hits inside tables too
]


def source(shared_content, name):
    return shared_content / "docx" / name


def propose(family_name, path, seed=0):
    return propose_task(BY_NAME[family_name], path, seed)


def _with(task, **params):
    return task.model_copy(update={"params": {**task.params, **params}})


def test_three_distinct_writer_families():
    assert len(FAMILIES) >= 3
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    assert all(f.app == "writer" and f.name.startswith("writer.") and "docx" in f.kinds
               for f in FAMILIES)


@pytest.mark.parametrize("family_name,file", LIVE)
def test_proposal_is_grounded_and_plan_is_valid(family_name, file, shared_content):
    path = source(shared_content, file)
    task = propose(family_name, path)
    assert task.family == family_name and task.app == "writer" and task.content == file
    texts = story_texts(path)
    if family_name == "writer.append_paragraph":
        assert task.params["text"] in task.instruction
    elif family_name == "writer.heading":
        paragraph = docx.Document(path).paragraphs[task.params["paragraph"]]
        assert paragraph.text.strip() == task.params["text"]
        assert task.params["text"] in task.instruction
    else:
        assert count_word(texts, task.params["word"]) == task.params["count"] >= 2
        assert task.params["word"] in task.instruction
        assert task.params["replacement"] in task.instruction
    assert BY_NAME[family_name].judge(task, path).feasible
    plan = BY_NAME[family_name].plan(task)
    assert plan and all(step.thought.strip() and step.actions for step in plan)
    actions = [a for step in plan for a in step.actions]
    for action in actions:
        validate(action, 1920, 1080)
        to_call(action)
    assert not any(isinstance(a, Finished) for a in actions)
    assert Hotkey(keys=["ctrl", "s"]) not in actions


def test_propose_returns_none_without_a_target(shared_content):
    # lorem ipsum paragraphs are all long sentences: nothing reads like a heading
    assert BY_NAME["writer.heading"].propose(source(shared_content, "sample.docx"),
                                             random.Random(0)) is None
    # tracked changes make counts ambiguous; a one-paragraph Polish text has no listed word
    for name in ("stress023.docx", "57312.docx"):
        assert BY_NAME["writer.replace_word"].propose(source(shared_content, name),
                                                      random.Random(0)) is None


def test_judge_rejects_infeasible_appends(shared_content, tmp_path):
    family, path = BY_NAME["writer.append_paragraph"], source(shared_content, "sample.docx")
    task = propose(family.name, path)
    document = docx.Document(path)
    document.add_paragraph(task.params["text"])
    document.save(tmp_path / "already.docx")
    verdict = family.judge(task, tmp_path / "already.docx")
    assert not verdict.feasible and "already in the document" in verdict.reason
    verdict = family.judge(task, source(shared_content, "61787.docx"))  # ends differently
    assert not verdict.feasible and "not the paragraph" in verdict.reason


def test_judge_rejects_infeasible_headings(shared_content, tmp_path):
    family, path = BY_NAME["writer.heading"], source(shared_content, "61787.docx")
    task = propose(family.name, path)
    document = docx.Document(path)
    document.paragraphs[task.params["paragraph"]].style = document.styles["Heading 1"]
    document.save(tmp_path / "done.docx")
    verdict = family.judge(task, tmp_path / "done.docx")
    assert not verdict.feasible and "already a Heading 1" in verdict.reason
    verdict = family.judge(task, source(shared_content, "sample.docx"))
    assert not verdict.feasible and "no paragraph reads" in verdict.reason
    # and the evaluator accepts that edited copy: the style is what it reads
    assert score(family, task, path, (tmp_path / "done.docx").read_bytes(), tmp_path).score == 1


def test_judge_rejects_infeasible_replacements(shared_content, tmp_path):
    family, path = BY_NAME["writer.replace_word"], source(shared_content, "61787.docx")
    task = propose(family.name, path)
    verdict = family.judge(task, source(shared_content, "sample.docx"))
    assert not verdict.feasible and "does not occur" in verdict.reason
    document = docx.Document(path)
    document.add_paragraph(f"A {task.params['replacement']} already.")
    document.save(tmp_path / "taken.docx")
    verdict = family.judge(task, tmp_path / "taken.docx")
    assert not verdict.feasible and "already in the document" in verdict.reason
    verdict = family.judge(task, source(shared_content, "stress023.docx"))
    assert not verdict.feasible and "tracked changes" in verdict.reason


@pytest.mark.desktop
@pytest.mark.parametrize("family_name,file", LIVE)
def test_family_succeeds_on_a_live_desktop(family_name, file, local_desktop, shared_content,
                                           tmp_path):
    family, path = BY_NAME[family_name], source(shared_content, file)
    task, result = run_family(local_desktop, family, path, tmp_path)
    assert result.score == 1, f"{task.instruction}\n{result}"


def test_append_paragraph_refuses_a_document_that_ends_with_a_table(tmp_path):
    import random

    from cua.collect.expert.writer import AppendParagraph
    from cua.content.documents import make_document

    memo = make_document(tmp_path / "memo.docx")  # its last block is a table
    assert AppendParagraph().propose(memo, random.Random(0)) is None
