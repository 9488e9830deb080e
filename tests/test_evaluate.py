"""Task configs and evaluators: compare_table's rules on pairs of workbooks (a matching and a
non-matching result for each), task folders mixing supported and unsupported tasks, and scoring that
never raises. tests/test_metric_parity.py holds compare_table against OSWorld's own."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font

from cua.evaluate import STEPS, load_tasks
from cua.scoring import GETTERS, METRICS, evaluate
from cua.scoring.metrics import match_rule
from cua.scoring.metrics.table import compare_table

SHEET = [{"type": "sheet_data", "sheet_idx0": 0, "sheet_idx1": "EI0"}]
SAVE = [  # OSWorld's usual postconfig: focus the window, ctrl+s
    {"type": "activate_window",
     "parameters": {"window_name": "Budget.xlsx - LibreOffice Calc", "strict": True}},
    {"type": "sleep", "parameters": {"seconds": 0.5}},
    {"type": "execute", "parameters": {"command": ["python", "-c",
                                                   "import pyautogui; pyautogui.hotkey(\"ctrl\", \"s\");"]}},
    {"type": "sleep", "parameters": {"seconds": 0.5}},
]


def xlsx(path: Path, rows: list[list], edit=None, title: str = "Sheet1") -> str:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    if edit:
        edit(ws)
    wb.save(path)
    return str(path)


def table(result: str, expected: str | None, *rules: dict) -> float:
    return compare_table(result, expected, rules=list(rules))


# -- value rules -----------------------------------------------------------------------------------


def test_rule_methods():
    assert match_rule(3.0, {"method": "eq", "ref": 3}) and not match_rule(3.0, {"method": "ne", "ref": 3})
    assert match_rule(None, {"method": "eq", "ref": None}) and match_rule(None, {"method": "ne", "ref": True})
    assert match_rule(-186.95, {"method": "approx:0.1", "ref": -186.93})
    assert match_rule("12.5", {"method": "approx:0.1", "ref": 12.5})  # numeric text reads as a number
    assert not match_rule("abc", {"method": "approx:0.1", "ref": 1})
    assert match_rule(" Total Sales ", {"method": "re", "ref": r"^\s*Total Sales\s*$"})
    assert not match_rule(None, {"method": "re", "ref": "x"})  # incomparable values never match
    for method in ("lt", "re.I", "range.te", "str_set_eq", "spreadsheet_range"):
        with pytest.raises(ValueError):
            match_rule(1, {"method": method, "ref": []})


# -- compare_table ---------------------------------------------------------------------------------


def test_sheet_data_rounds_to_four_decimals_and_ignores_trailing_blanks(tmp_path):
    gold = xlsx(tmp_path / "gold.xlsx", [["Item", "Amount"], ["Rent", 800.00001], ["Power", 1 / 3]])
    same = xlsx(tmp_path / "same.xlsx", [["Item", "Amount"], ["Rent", 800], ["Power", 0.33333], [None, None]])
    off = xlsx(tmp_path / "off.xlsx", [["Item", "Amount"], ["Rent", 800], ["Power", 0.3334]])
    assert table(same, gold, *SHEET) == 1
    score = table(off, gold, *SHEET)
    assert score == 0 and "column B ('Amount'): row 3" in score.reason
    assert table(off, gold, {**SHEET[0], "precision": 2}) == 1
    # a sheet either side lacks fails
    assert table(same, gold, {"type": "sheet_data", "sheet_idx0": "RNTotals", "sheet_idx1": "ENSheet1"}) == 0
    assert table(same, gold, {"type": "sheet_data", "sheet_idx0": "RI0", "sheet_idx1": "EI3"}) == 0
    with pytest.raises(ValueError, match="expected workbook"):
        table(same, None, *SHEET)


def test_sheet_data_reads_columns_as_pandas_types_them(tmp_path):
    """The first row labels the columns; only all-number columns are rounded, a column of whole
    numbers differs from one of floats, and error cells and "NA"-like text read as empty."""
    gold = xlsx(tmp_path / "gold.xlsx", [["Id", "Note", "Count"], [1, "a", 2], [2, 0.12344, 3]])
    mixed = xlsx(tmp_path / "mixed.xlsx", [["Id", "Note", "Count"], [1, "a", 2], [2, 0.12341, 3]])
    floats = xlsx(tmp_path / "floats.xlsx", [["Id", "Note", "Count"], [1, "a", 2.00001], [2, 0.12344, 3]])
    assert table(mixed, gold, *SHEET) == 0  # "Note" mixes text and numbers: no rounding
    score = table(floats, gold, *SHEET)
    assert score == 0 and "float values != int values" in score.reason
    labels = xlsx(tmp_path / "labels.xlsx", [["Id", "Note", "Total"], [1, "a", 2], [2, 0.12344, 3]])
    assert "column labels" in table(labels, gold, *SHEET).reason

    def errors(ws):
        ws["B2"] = "NA"
        ws["D2"] = "#DIV/0!"
        ws["D2"].data_type = "e"
    empty = xlsx(tmp_path / "empty.xlsx", [["Id", "Note", "Count"], [1, None, 2]])
    na = xlsx(tmp_path / "na.xlsx", [["Id", "Note", "Count"], [1, None, 2]], errors)
    assert table(na, empty, {**SHEET[0], "sheet_idx1": "EI0"}) == 0  # the error cell adds a column
    na_only = xlsx(tmp_path / "na-only.xlsx", [["Id", "Note", "Count"], [1, "NA", 2]])
    assert table(na_only, empty, *SHEET) == 1


@pytest.mark.filterwarnings("ignore::UserWarning")  # openpyxl on the real file's extensions
def test_sheet_data_on_a_real_workbook_and_an_edited_copy(shared_content, tmp_path):
    real = shared_content / "xlsx" / "simple-monthly-budget.xlsx"
    wb = openpyxl.load_workbook(real, data_only=True)  # re-saved with the cached values as constants
    wb.save(tmp_path / "resaved.xlsx")
    wb.worksheets[0]["C5"] = 2600
    wb.save(tmp_path / "edited.xlsx")
    assert table(str(tmp_path / "resaved.xlsx"), str(real), *SHEET) == 1
    score = table(str(tmp_path / "edited.xlsx"), str(real), *SHEET)
    assert score == 0 and "2600" in score.reason


def test_check_cell_value_and_bold(tmp_path):
    def styled(ws):
        ws["A1"].font = Font(bold=True)

    result = xlsx(tmp_path / "r.xlsx", [["Total", 12.04], ["x", 5], [True, None]], styled)
    plain = xlsx(tmp_path / "p.xlsx", [["Total", 12.2], ["y", 5], [True, 1]])

    def cell(coordinate: str, sheet: str = "RNSheet1", **props) -> dict:
        return {"type": "check_cell", "sheet_idx": sheet, "coordinate": coordinate, "props": props}

    checks = [cell("A1", value={"method": "eq", "ref": "Total"}, font_bold={"method": "eq", "ref": True}),
              cell("B1", value={"method": "approx:0.1", "ref": 12}),
              cell("A2", "RI0", value={"method": "re", "ref": "^x$"}, font_bold={"method": "ne", "ref": True}),
              cell("B3", value={"method": "eq", "ref": None}, font_bold={"method": "ne", "ref": True})]
    assert table(result, None, *checks) == 1
    for check in checks:
        assert table(plain, None, check) == 0, check
    # numbers read as floats, booleans as None: OSWorld reads the cell's XML
    assert table(result, None, cell("B2", value={"method": "eq", "ref": 5.0})) == 1
    assert table(result, None, cell("A3", value={"method": "eq", "ref": None})) == 1
    score = table(result, None, cell("A1", "RNTotals", value={"method": "eq", "ref": "Total"}))
    assert score == 0 and "no such sheet" in score.reason


def test_check_cell_reads_the_part_the_sheet_id_names(tmp_path):
    """OSWorld reads a sheet's values from xl/worksheets/sheet<sheetId>.xml: where the ids are
    not the parts' numbers, it reads another sheet's cells (styles still come from the right one)."""
    book = openpyxl.Workbook()
    book.active.title = "First"
    book.active["A1"] = "first"
    book.create_sheet("Second")["A1"] = "second"
    book.save(tmp_path / "ids.xlsx")
    with zipfile.ZipFile(tmp_path / "ids.xlsx") as src, \
            zipfile.ZipFile(tmp_path / "swapped.xlsx", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/workbook.xml":
                data = data.replace(b'sheetId="1"', b'sheetId="X"').replace(
                    b'sheetId="2"', b'sheetId="1"').replace(b'sheetId="X"', b'sheetId="2"')
            dst.writestr(item, data)
    rule = {"type": "check_cell", "sheet_idx": "RNFirst", "coordinate": "A1",
            "props": {"value": {"method": "eq", "ref": "first"}}}
    assert table(str(tmp_path / "ids.xlsx"), None, rule) == 1
    assert table(str(tmp_path / "swapped.xlsx"), None, rule) == 0
    assert table(str(tmp_path / "swapped.xlsx"), None,
                 {**rule, "props": {"value": {"method": "eq", "ref": "second"}}}) == 1


# -- task folders ----------------------------------------------------------------------------------


def calc_task(task_id: str, files: str = "files", **evaluator) -> dict:
    """A Calc task shaped like OSWorld's (e.g. 01b269ae… "fill blank cells"), with local files."""
    return {
        "id": task_id, "snapshot": "libreoffice_calc", "source": "https://www.youtube.com/shorts/VrUzPTIwQ04",
        "instruction": "Fill all the blank cells with the value in the cell above it",
        "config": [
            {"type": "download", "parameters": {"files": [
                {"url": f"{files}/Budget.xlsx", "path": "/home/user/Budget.xlsx"}]}},
            {"type": "open", "parameters": {"path": "/home/user/Budget.xlsx"}},
        ],
        "trajectory": f"trajectories/{task_id}", "related_apps": ["libreoffice_calc"],
        "evaluator": {"postconfig": SAVE, "func": "compare_table",
                      "expected": {"type": "cloud_file", "path": f"{files}/Budget_gold.xlsx",
                                   "dest": "Budget_gold.xlsx"},
                      "result": {"type": "vm_file", "path": "/home/user/Budget.xlsx", "dest": "Budget.xlsx"},
                      "options": {"rules": SHEET}, **evaluator},
        "proxy": False, "fixed_ip": False, "possibility_of_env_change": "low",
    }


@pytest.fixture
def task_dir(tmp_path) -> Path:
    root = tmp_path / "libreoffice_calc"
    (root / "files").mkdir(parents=True)
    xlsx(root / "files" / "Budget.xlsx", [["Student", "Level"], ["Ann", "A"], ["Bob", None]])
    xlsx(root / "files" / "Budget_gold.xlsx", [["Student", "Level"], ["Ann", "A"], ["Bob", "A"]])
    tasks = {
        "fill-blank": calc_task("fill-blank"),
        "file-url": calc_task("file-url", expected={
            "type": "cloud_file", "path": (root / "files" / "Budget_gold.xlsx").as_uri(),
            "dest": "gold.xlsx"}),
        "either": calc_task("either", func=["compare_table", "compare_table"], conj="or",
                            result=[{"type": "vm_file", "path": "/home/user/Budget.xlsx", "dest": "a.xlsx"},
                                    {"type": "vm_file", "path": "/home/user/Budget.xlsx", "dest": "b.xlsx"}],
                            expected=[{"type": "local_file", "path": "files/Budget_gold.xlsx"},
                                      {"type": "local_file", "path": "files/Budget.xlsx"}],
                            options=[{"rules": SHEET}, {"rules": SHEET}]),
        "pivot": calc_task("pivot", func="compare_pivot_table"),
        "chart-rule": calc_task("chart-rule", options={"rules": [
            *SHEET, {"type": "chart", "sheet_idx0": 0, "sheet_idx1": "EI0",
                     "chart_props": ["type", "title"]}]}),
        "gdrive": {**calc_task("gdrive"), "config": [
            {"type": "googledrive", "parameters": {"settings_file": "x.json", "operation": ["delete"]}}]},
        "huggingface": calc_task("huggingface", expected={
            "type": "cloud_file", "dest": "gold.xlsx",
            "path": "https://huggingface.co/datasets/xlangai/ubuntu_osworld_file_cache/resolve/main/"
                    "libreoffice_calc/huggingface/gold.xlsx"}),
        "bad-lists": calc_task("bad-lists", func=["compare_table", "compare_table"]),
        "odd-rules": calc_task("odd-rules", options={"rules": [
            {"type": "check_cell", "sheet_idx": 0, "coordinate": "A1",
             "props": {"font_color": {"method": "eq", "ref": "FF000000"}}}]}),
    }
    for name, task in tasks.items():
        (root / f"{name}.json").write_text(json.dumps(task, indent=1))
    (root / "broken.json").write_text('{"id": "broken", "instruction": ')
    return root


def test_load_tasks_lists_unsupported_ones_with_reasons(task_dir):
    tasks, unsupported = load_tasks(task_dir)
    assert sorted(t.id for t in tasks) == ["either", "file-url", "fill-blank"]
    task = next(t for t in tasks if t.id == "fill-blank")
    assert task.task_dir == task_dir and task.model_extra["possibility_of_env_change"] == "low"
    assert [s.type for s in task.evaluator.postconfig] == ["activate_window", "sleep", "execute", "sleep"]
    assert task.config[0].params().files[0].path == "/home/user/Budget.xlsx"
    assert set(unsupported) == {"pivot", "chart-rule", "gdrive", "huggingface", "bad-lists", "odd-rules",
                                str(task_dir / "broken.json")}
    assert "compare_pivot_table" in unsupported["pivot"]
    assert "'chart'" in unsupported["chart-rule"]
    assert "googledrive" in unsupported["gdrive"]
    assert "no internet" in unsupported["huggingface"]
    assert "one per func" in unsupported["bad-lists"]
    assert "unsupported prop 'font_color'" in unsupported["odd-rules"]
    assert unsupported[str(task_dir / "broken.json")].startswith("malformed JSON")


def test_load_tasks_from_files_reports_missing_local_files_and_duplicates(task_dir, tmp_path):
    (task_dir / "files" / "Budget.xlsx").unlink()
    copy = tmp_path / "copy.json"
    shutil.copy(task_dir / "file-url.json", copy)
    tasks, unsupported = load_tasks([task_dir / "file-url.json", copy, tmp_path / "absent.json"])
    assert tasks == []
    assert "Budget.xlsx is not a local file" in unsupported["file-url"]
    assert "duplicate" in unsupported[f"file-url ({copy})"]
    assert unsupported[str(tmp_path / "absent.json")].startswith("unreadable")


# -- scoring ---------------------------------------------------------------------------------------


def desktop(files: dict[str, Path]):
    """A fetch(path) -> bytes over a fake desktop's files."""
    def fetch(path: str) -> bytes:
        if path not in files:
            raise FileNotFoundError(f"{path}: no such file on the desktop")
        return files[path].read_bytes()
    return fetch


def test_evaluate_scores_gold_and_initial_state(task_dir, tmp_path):
    tasks, _ = load_tasks(task_dir)
    by_id = {t.id: t for t in tasks}
    gold = desktop({"/home/user/Budget.xlsx": task_dir / "files" / "Budget_gold.xlsx"})
    initial = desktop({"/home/user/Budget.xlsx": task_dir / "files" / "Budget.xlsx"})
    for task_id in ("fill-blank", "file-url"):
        task = by_id[task_id]
        passed = evaluate(task.evaluator, gold, task.task_dir, tmp_path / task_id / "gold")
        assert passed.score == 1 and passed.error is None
        failed = evaluate(task.evaluator, initial, task.task_dir, tmp_path / task_id / "initial")
        assert failed.score == 0 and failed.error is None and "row 3" in failed.details[0].reason
    # "or": the second metric (against the initial file) passes for the initial state
    either = evaluate(by_id["either"].evaluator, initial, task_dir, tmp_path / "either")
    assert either.score == 1 and [d.score for d in either.details] == [0, 1]


def test_evaluate_never_raises(task_dir, tmp_path, shared_content):
    evaluator = calc_task("x")["evaluator"]
    corrupt = shared_content / "corrupt" / "truncated62886.docx"
    cases = {
        "missing file": desktop({}),
        "corrupt file": desktop({"/home/user/Budget.xlsx": corrupt}),
        "fetch fails": lambda path: (_ for _ in ()).throw(ConnectionError("desktop gone")),
    }
    for name, fetch in cases.items():
        result = evaluate(evaluator, fetch, task_dir, tmp_path / name)
        assert result.score == 0 and result.error and result.details[0].error, name
    assert "no such file" in evaluate(evaluator, cases["missing file"], task_dir, tmp_path / "m").error
    assert evaluate({"func": "compare_pivot_table"}, None, task_dir, tmp_path / "u").error
    assert evaluate({"func": 3}, None, task_dir, tmp_path / "v").error.startswith("invalid evaluator")


def test_evaluate_and_averages_and_stops_at_the_first_zero(tmp_path, monkeypatch):
    fetch = desktop({"/home/user/a.xlsx": Path(xlsx(tmp_path / "a.xlsx", [["Total", 3]]))})
    result = {"type": "vm_file", "path": "/home/user/a.xlsx", "dest": "a.xlsx"}

    def total(ref: int) -> dict:
        return {"rules": [{"type": "check_cell", "sheet_idx": "RNSheet1", "coordinate": "B1",
                           "props": {"value": {"method": "eq", "ref": ref}}}]}

    monkeypatch.setitem(METRICS, "half", lambda result, **options: 0.5)
    calls = {"func": ["compare_table", "half", "compare_table", "compare_table"],
             "result": [result] * 4, "options": [total(3), None, total(4), total(3)]}
    outcome = evaluate(calls, fetch, tmp_path, tmp_path / "cache")
    assert [d.func for d in outcome.details] == calls["func"][:3]  # the third scores 0 and ends it
    assert outcome.score == 0 and "B1" in outcome.details[-1].reason
    calls["options"][2] = total(3)
    assert evaluate(calls, fetch, tmp_path, tmp_path / "cache2").score == pytest.approx(3.5 / 4)


def test_registries_name_what_is_supported():
    assert {"download", "upload_file", "open", "launch", "execute", "command", "sleep",
            "activate_window"} == set(STEPS)
    assert {"vm_file", "cloud_file", "local_file", "rule"} == set(GETTERS)
    assert {"compare_table", "check_slides", "check_paragraphs"} == set(METRICS)
