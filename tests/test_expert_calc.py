"""Calc families of the scripted expert on real spreadsheets: live runs and gold edits that the
evaluator must score 1, and the judge refusing infeasible tasks (test_expert_families scores the
untouched originals)."""

from __future__ import annotations

import random
import shutil
import warnings

import openpyxl
import pytest
from openpyxl.styles import Font

from cua.actions import to_call, validate
from cua.collect.expert.calc import FAMILIES
from tests.expert_harness import propose_task, run_family, score

BY_NAME = {family.name: family for family in FAMILIES}

# family x real file from ../shared/content/xlsx where the family proposes a task (seed 0)
LIVE = [
    ("calc.sum_column", "WithChartSheet.xlsx"),
    ("calc.sum_column", "NumberFormatTests.xlsx"),
    ("calc.sort_range", "WithChartSheet.xlsx"),
    ("calc.sort_range", "52716.xlsx"),
    ("calc.bold_header", "52716.xlsx"),
    ("calc.bold_header", "DateFormatTests.xlsx"),
    ("calc.rename_sheet", "WithChartSheet.xlsx"),
    ("calc.rename_sheet", "56278.xlsx"),
    ("calc.insert_column", "WithChartSheet.xlsx"),
    ("calc.insert_column", "48962.xlsx"),
    ("calc.fill_series", "52716.xlsx"),
    ("calc.fill_series", "Themes2.xlsx"),
]


def source(shared_content, name):
    return shared_content / "xlsx" / name


def propose(family_name, path, seed=0):
    return propose_task(BY_NAME[family_name], path, seed)


def test_at_least_six_distinct_families():
    assert len(FAMILIES) >= 6
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    assert all(f.app == "calc" and f.name.startswith("calc.") for f in FAMILIES)


@pytest.mark.parametrize("family_name,file", LIVE)
def test_proposal_is_grounded_and_plan_is_valid(family_name, file, shared_content):
    family = BY_NAME[family_name]
    path = source(shared_content, file)
    task = propose(family_name, path)
    assert task.family == family_name and task.app == "calc" and task.content == file
    assert task.params["sheet"] in openpyxl.load_workbook(path).sheetnames
    assert task.params["sheet"] in task.instruction
    assert family.judge(task, path).feasible
    assert propose(family_name, path) == task  # deterministic for a seed
    steps = family.plan(task)
    assert steps and all(step.thought and step.actions for step in steps)
    for step in steps:
        for action in step.actions:
            validate(action, 1920, 1080)
            to_call(action)


def test_families_propose_nothing_without_a_target(shared_content):
    # a form made of merged cells has no table with a header row
    form = source(shared_content, "45540_form_Footer.xlsx")
    for name in ("calc.sum_column", "calc.sort_range", "calc.bold_header", "calc.insert_column",
                 "calc.fill_series"):
        assert BY_NAME[name].propose(form, random.Random(0)) is None, name


def test_files_with_macros_are_left_alone(shared_content, tmp_path):
    # Calc stops on a macro warning before it shows such a file: nothing to propose, and a task
    # made elsewhere is judged infeasible on it
    macros = source(shared_content, "stress002.xlsx")
    task = propose("calc.rename_sheet", source(shared_content, "WithChartSheet.xlsx"))
    for family in FAMILIES:
        assert family.propose(macros, random.Random(0)) is None, family.name
    verdict = BY_NAME["calc.rename_sheet"].judge(task, macros)
    assert not verdict.feasible and "macro" in verdict.reason


def edited_copy(tmp_path, path, edit):
    """A copy of a real file, changed with openpyxl (never the original)."""
    copy = tmp_path / f"edited-{path.name}"
    shutil.copy(path, copy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = openpyxl.load_workbook(copy)
        edit(wb)
        wb.save(copy)
    return copy


def fill_target(task):
    def edit(wb):
        wb[task.params["sheet"]][task.params["target"]] = 1
    return edit


def unsorted_key_to_text(task):
    def edit(wb):
        ws = wb[task.params["sheet"]]
        first = ws[task.params["range"]][1][task.params["key_index"]]
        first.value = "n/a"
    return edit


def bold_header(task):
    def edit(wb):
        for row in wb[task.params["sheet"]][task.params["header_ref"]]:
            for cell in row:
                cell.font = Font(bold=True)
    return edit


def add_sheet_with_new_name(task):
    def edit(wb):
        wb.create_sheet(task.params["new_name"])
    return edit


def change_header(task):
    def edit(wb):
        ws = wb[task.params["sheet"]]
        top_row = int("".join(ch for ch in task.params["table"].split(":")[0] if ch.isdigit()))
        ws.cell(top_row, task.params["col"]).value = "Something else"
    return edit


def occupy_range(task):
    def edit(wb):
        ws = wb[task.params["sheet"]]
        ws[task.params["range"]][-1][0].value = 7
    return edit


INFEASIBLE = {
    "calc.sum_column": (fill_target, "already holds"),
    "calc.sort_range": (unsorted_key_to_text, "not all numbers"),
    "calc.bold_header": (bold_header, "already bold"),
    "calc.rename_sheet": (add_sheet_with_new_name, "already exists"),
    "calc.insert_column": (change_header, "no longer starts with"),
    "calc.fill_series": (occupy_range, "not free"),
}


@pytest.mark.parametrize("family_name,file", LIVE[::2])
def test_judge_rejects_infeasible_tasks(family_name, file, shared_content, tmp_path):
    family = BY_NAME[family_name]
    path = source(shared_content, file)
    task = propose(family_name, path)
    edit, reason = INFEASIBLE[family_name]
    verdict = family.judge(task, edited_copy(tmp_path, path, edit(task)))
    assert not verdict.feasible and reason in verdict.reason, verdict.reason
    # a task on a sheet that is not there is infeasible for every family
    gone = task.model_copy(update={"params": {**task.params, "sheet": "No Such Sheet"}})
    verdict = family.judge(gone, path)
    assert not verdict.feasible and "No Such Sheet" in verdict.reason


def gold_edit(task):
    """The task done with openpyxl (no formula results, so not for calc.sum_column)."""
    p = task.params

    def edit(wb):
        ws = wb[p["sheet"]]
        if task.family == "calc.sort_range":
            rows = [[c.value for c in row] for row in ws[p["range"]]][1:]
            rows.sort(key=lambda r: r[p["key_index"]], reverse=p["descending"])
            for cells, values in zip(ws[p["range"]][1:], rows):
                for cell, value in zip(cells, values):
                    cell.value = value
        elif task.family == "calc.bold_header":
            for row in ws[p["header_ref"]]:
                for cell in row:
                    cell.font = Font(bold=True)
        elif task.family == "calc.rename_sheet":
            ws.title = p["new_name"]
        elif task.family == "calc.insert_column":
            ws.insert_cols(p["col"])
        elif task.family == "calc.fill_series":
            for i, row in enumerate(ws[p["range"]]):
                row[0].value = p["start"] + i * p["step"]
    return edit


GOLD = [(f, n) for f, n in LIVE if f != "calc.sum_column"] + [
    ("calc.insert_column", "DateFormatTests.xlsx"),  # two sheets with tables
    ("calc.insert_column", "56644.xlsx"),
    ("calc.fill_series", "DateFormatTests.xlsx"),
    ("calc.bold_header", "ElapsedFormatTests.xlsx"),
    ("calc.rename_sheet", "DataTableCities.xlsx"),
]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("family_name,file", GOLD)
def test_evaluator_passes_on_a_gold_edit(family_name, file, seed, shared_content, tmp_path):
    family, path = BY_NAME[family_name], source(shared_content, file)
    task = propose(family_name, path, seed)
    gold = edited_copy(tmp_path, path, gold_edit(task))
    evaluated = score(family, task, path, gold.read_bytes(), tmp_path)
    assert evaluated.score == 1, evaluated


@pytest.mark.parametrize("family_name,file", [(f, n) for f, n in LIVE[::2]
                                              if f != "calc.rename_sheet"])
def test_judge_rejects_a_protected_sheet(family_name, file, shared_content, tmp_path):
    path = source(shared_content, file)
    task = propose(family_name, path)

    def protect(wb):
        wb[task.params["sheet"]].protection.sheet = True

    verdict = BY_NAME[family_name].judge(task, edited_copy(tmp_path, path, protect))
    assert not verdict.feasible and "protected" in verdict.reason, verdict.reason


@pytest.mark.desktop
@pytest.mark.parametrize("family_name,file", LIVE)
def test_family_succeeds_on_a_live_desktop(family_name, file, local_desktop, shared_content,
                                           tmp_path):
    family, path = BY_NAME[family_name], source(shared_content, file)
    task, result = run_family(local_desktop, family, path, tmp_path)
    assert result.score == 1, f"{task.instruction}\n{result}"
