"""OSWorld task configs and evaluators on real pairs of office files (a matching and a non-matching
result for each rule), task folders mixing supported and unsupported OSWorld tasks, and scoring that
never raises."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from docx import Document
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Font, PatternFill
from pptx import Presentation
from pptx.util import Inches, Pt
from rapidfuzz.fuzz import ratio as fuzz_ratio

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


def pptx(path: Path, title: str = "Quarterly review", body: str = "Revenue grew", bold: bool = False,
         left: float = 1.0, slides: int = 2) -> str:
    prs = Presentation()
    for n in range(slides):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = f"{title} {n}"
        slide.placeholders[1].text = body
        slide.placeholders[1].text_frame.paragraphs[0].runs[0].font.bold = bold
        box = slide.shapes.add_textbox(Inches(left), Inches(6), Inches(3), Inches(0.5))
        box.text_frame.text = "footer"
        box.text_frame.paragraphs[0].runs[0].font.size = Pt(12)
    prs.save(path)
    return str(path)


def docx(path: Path, paragraphs: list[str]) -> str:
    doc = Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    doc.save(path)
    return str(path)


def table(result: str, expected: str | None, *rules: dict) -> float:
    return compare_table(result, expected, rules=list(rules))


# -- value rules -----------------------------------------------------------------------------------


def test_rule_methods_and_fuzzy_ratio():
    assert match_rule(3.0, {"method": "eq", "ref": 3}) and not match_rule(3.0, {"method": "ne", "ref": 3})
    assert match_rule(-186.95, {"method": "approx:0.1", "ref": -186.93})
    assert not match_rule("abc", {"method": "approx:0.1", "ref": 1})
    assert match_rule("Total Sales", {"method": "re.I", "ref": "^total"})
    assert not match_rule(None, {"method": "re", "ref": "x"})
    half_open = {"method": "range.te", "ref": [0, 2]}  # 0 < x <= 2
    assert match_rule(2, half_open) and not match_rule(0, half_open)
    assert match_rule("'b,a'", {"method": "str_set_eq", "ref": ["a", "b"]})
    assert not match_rule("b,a", {"method": "str_list_eq", "ref": ["a", "b"]})
    assert not match_rule(None, {"method": "lt", "ref": 5})  # incomparable values never match
    with pytest.raises(ValueError):
        match_rule(1, {"method": "spreadsheet_range", "ref": []})
    assert fuzz_ratio("this is a test", "this is a test!") == pytest.approx(96.5517, abs=1e-3)
    assert fuzz_ratio("", "") == 100 and fuzz_ratio("abc", "") == 0


# -- compare_table ---------------------------------------------------------------------------------


def test_sheet_data_rounds_to_four_decimals_and_ignores_trailing_blanks(tmp_path):
    gold = xlsx(tmp_path / "gold.xlsx", [["Item", "Amount"], ["Rent", 800.00001], ["Power", 1 / 3]])
    same = xlsx(tmp_path / "same.xlsx", [["Item", "Amount"], ["Rent", 800], ["Power", 0.33333], [None, None]])
    off = xlsx(tmp_path / "off.xlsx", [["Item", "Amount"], ["Rent", 800], ["Power", 0.3334]])
    assert table(same, gold, *SHEET) == 1
    score = table(off, gold, *SHEET)
    assert score == 0 and "row 3" in score.reason
    assert table(off, gold, {**SHEET[0], "precision": 2}) == 1
    # a sheet the result lacks fails; one the gold lacks is an error in the task
    assert table(same, gold, {"type": "sheet_data", "sheet_idx0": "RNTotals", "sheet_idx1": "ENSheet1"}) == 0
    with pytest.raises(ValueError):
        table(same, gold, {"type": "sheet_data", "sheet_idx0": "RI0", "sheet_idx1": "EI3"})


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


def test_check_cell_value_and_style_props(tmp_path):
    def styled(ws):
        ws["A1"].font = Font(bold=True, color="FFFF0000")
        ws["B2"].fill = PatternFill("solid", fgColor="FFFFFF00")
        ws.merge_cells("A3:B3")

    result = xlsx(tmp_path / "r.xlsx", [["Total", 12.04], ["x", 5], ["merged", None]], styled)
    plain = xlsx(tmp_path / "p.xlsx", [["Total", 12.2], ["x", 5], ["merged", None]])

    def cell(coordinate: str, **props) -> dict:
        return {"type": "check_cell", "sheet_idx": "RNSheet1", "coordinate": coordinate, "props": props}

    checks = [cell("A1", value={"method": "eq", "ref": "Total"}, font_bold={"method": "eq", "ref": True},
                   font_color={"method": "eq", "ref": "FFFF0000"}),
              cell("B1", value={"method": "approx:0.1", "ref": 12}),
              cell("B2", bgcolor={"method": "eq", "ref": "FFFFFF00"}, value={"method": "eq", "ref": 5}),
              cell("B3", merge={"method": "eq", "ref": True})]
    assert table(result, None, *checks) == 1
    for check in checks:
        assert table(plain, None, check) == 0, check


def test_style_rule_with_fonts_fills_and_conditional_formats(tmp_path):
    def gold_style(ws):
        ws["A1"].font = Font(bold=True, italic=True, color="FF0000FF")
        ws["B1"].fill = PatternFill("solid", fgColor="FFFFFF00")
        ws.conditional_formatting.add("B2:B4", CellIsRule(operator="greaterThan", formula=["5"],
                                                          fill=PatternFill(bgColor="FFFF0000")))

    def no_italic(ws):
        gold_style(ws)
        ws["A1"].font = Font(bold=True, color="FF0000FF")

    def no_highlight(ws):
        ws["A1"].font = Font(bold=True, italic=True, color="FF0000FF")
        ws["B1"].fill = PatternFill("solid", fgColor="FFFFFF00")

    rows = [["Name", "Score"], ["a", 3], ["b", 7], ["c", 9]]
    gold = xlsx(tmp_path / "gold.xlsx", rows, gold_style)
    rule = {"type": "style", "sheet_idx0": 0, "sheet_idx1": "EI0",
            "props": ["font_bold", "font_italic", "font_color", "bgcolor"]}
    assert table(xlsx(tmp_path / "same.xlsx", rows, gold_style), gold, rule) == 1
    assert table(xlsx(tmp_path / "a.xlsx", rows, no_italic), gold, rule) == 0
    score = table(xlsx(tmp_path / "b.xlsx", rows, no_highlight), gold, rule)
    assert score == 0 and "B3" in score.reason  # 7 > 5 is red in the gold only
    # a cell restyled by hand to look like the conditional format matches it
    def by_hand(ws):
        no_highlight(ws)
        for c in ("B3", "B4"):
            ws[c].fill = PatternFill("solid", fgColor="FFFF0000")
    assert table(xlsx(tmp_path / "c.xlsx", rows, by_hand), gold, {**rule, "props": ["bgcolor"]}) == 1


def test_freeze_zoom_and_sheet_names(tmp_path):
    rows = [["h1", "h2"], [1, 2]]

    def frozen(cell):
        def edit(ws):
            ws.freeze_panes = cell
            ws.sheet_view.zoomScale = 80
        return edit

    gold = xlsx(tmp_path / "gold.xlsx", rows, frozen("B2"))
    rule = {"type": "freeze", "sheet_idx0": 0, "sheet_idx1": "EI0"}
    assert table(xlsx(tmp_path / "same.xlsx", rows, frozen("B2")), gold, rule) == 1
    assert table(xlsx(tmp_path / "row.xlsx", rows, frozen("A2")), gold, rule) == 0
    assert table(xlsx(tmp_path / "none.xlsx", rows), gold, rule) == 0
    zoom = {"type": "zoom", "sheet_idx": 0, "method": "lt", "ref": 100}
    assert table(gold, None, zoom) == 1 and table(str(tmp_path / "none.xlsx"), None, zoom) == 0
    renamed = xlsx(tmp_path / "renamed.xlsx", rows, title="Data")
    names = {"type": "sheet_name"}
    assert table(gold, gold, names) == 1 and table(renamed, gold, names) == 0


def test_sheet_print_reads_the_csv_export_beside_the_workbook(tmp_path):
    rows = [["Id"], [1234]]
    gold, result = xlsx(tmp_path / "ids_gold.xlsx", rows), xlsx(tmp_path / "ids.xlsx", rows)
    (tmp_path / "ids_gold-Sheet1.csv").write_text("ID\n0001234\n\n")
    rule = {"type": "sheet_print", "sheet_idx0": "RNSheet1", "sheet_idx1": "ENSheet1", "ignore_case": True}
    (tmp_path / "ids-Sheet1.csv").write_text("id\n0001234\n")
    assert table(result, gold, rule) == 1
    assert table(result, gold, {**rule, "ignore_case": False}) == 0
    (tmp_path / "ids-Sheet1.csv").write_text("id\n1234\n")
    assert table(result, gold, rule) == 0
    (tmp_path / "ids-Sheet1.csv").unlink()
    with pytest.raises(FileNotFoundError, match="ids-Sheet1.csv"):
        table(result, gold, rule)


def test_sheet_fuzzy_rules(tmp_path):
    gold = xlsx(tmp_path / "gold.xlsx", [["Name", "Address", "Phone"], ["Joe's", "12 Main Road", "555 1234"]])
    near = xlsx(tmp_path / "near.xlsx",
                [["Name", "Address", "Phone"], ["Joe's", "12 main Rd", "+ (555) 1234-x"]])
    far = xlsx(tmp_path / "far.xlsx", [["Name", "Address", "Phone"], ["Joes", "Elm Street 9", "555"]])
    rule = {"type": "sheet_fuzzy", "sheet_idx0": "RNSheet1", "sheet_idx1": "ENSheet1", "rules": [
        {"range": ["A1:A2", "B1:C1"], "type": "exact_match"},
        {"range": ["B2"], "type": "fuzzy_match", "threshold": 85, "normalization": [["Rd", "Road"]],
         "ignore_case": True},
        {"range": ["C2"], "type": "includes", "trim_leadings": "+ ", "ignore_chars": " ()"}]}
    assert table(near, gold, rule) == 1
    assert table(far, gold, rule) == 0


# -- compare_pptx_files ----------------------------------------------------------------------------


def test_compare_pptx_files_text_count_fonts_and_shapes(tmp_path):
    gold = pptx(tmp_path / "gold.pptx", bold=True)
    compare = METRICS["compare_pptx_files"]
    assert compare(pptx(tmp_path / "same.pptx", bold=True), gold) == 1
    score = compare(pptx(tmp_path / "text.pptx", body="Revenue fell", bold=True), gold)
    assert score == 0 and "Revenue fell" in score.reason
    fewer = pptx(tmp_path / "fewer.pptx", bold=True, slides=1)
    assert compare(fewer, gold) == 0 and compare(fewer, gold, examine_number_of_slides=False) == 1
    plain = pptx(tmp_path / "plain.pptx")
    assert compare(plain, gold) == 0 and compare(plain, gold, examine_font_bold=False) == 1
    moved = pptx(tmp_path / "moved.pptx", bold=True, left=2.0)
    assert compare(moved, gold) == 0 and compare(moved, gold, examine_shape=False) == 1


def test_compare_pptx_files_tables(tmp_path):
    def deck(name: str, cells: list[str] | None) -> str:
        prs = Presentation()
        shapes = prs.slides.add_slide(prs.slide_layouts[5]).shapes
        if cells is None:
            shapes.add_textbox(Inches(1), Inches(2), Inches(4), Inches(1)).text_frame.text = "Q1 Q2"
        else:
            frame = shapes.add_table(1, 2, Inches(1), Inches(2), Inches(4), Inches(1))
            for i, text in enumerate(cells):
                frame.table.cell(0, i).text = text
        prs.save(tmp_path / name)
        return str(tmp_path / name)

    gold = deck("gold.pptx", ["Q1", "Q2"])
    compare = METRICS["compare_pptx_files"]
    assert compare(deck("same.pptx", ["Q1", "Q2"]), gold) == 1
    assert "cell (0, 1)" in compare(deck("cell.pptx", ["Q1", "Q3"]), gold).reason
    assert compare(deck("box.pptx", None), gold, examine_shape=False) == 0


def test_compare_pptx_files_on_a_real_deck_and_an_edited_copy(shared_content, tmp_path):
    real = shared_content / "pptx" / "themes.pptx"
    prs = Presentation(real)
    prs.save(tmp_path / "resaved.pptx")
    shape = next(s for slide in prs.slides for s in slide.shapes
                 if s.has_text_frame and s.text_frame.text.strip())
    shape.text_frame.paragraphs[0].runs[0].text = "Edited by the agent"
    prs.save(tmp_path / "edited.pptx")
    compare = METRICS["compare_pptx_files"]
    assert compare(str(tmp_path / "resaved.pptx"), str(real)) == 1
    assert compare(str(tmp_path / "edited.pptx"), str(real)) == 0


# -- compare_docx_files ----------------------------------------------------------------------------


def test_compare_docx_files_options(tmp_path):
    gold = docx(tmp_path / "gold.docx", ["Dear Sam,", "", "The meeting is at noon."])
    spaced = docx(tmp_path / "spaced.docx", ["Dear  Sam,", "The meeting is at noon. "])
    shouted = docx(tmp_path / "shouted.docx", ["DEAR SAM,", "", "THE MEETING IS AT NOON."])
    compare = METRICS["compare_docx_files"]
    assert compare(spaced, gold) == 1  # ignore_blanks (default) collapses whitespace
    assert compare(spaced, gold, ignore_blanks=False) == 0
    assert compare(shouted, gold) == 0 and compare(shouted, gold, ignore_case=True) == 1
    assert compare(shouted, gold, ignore_blanks=False, ignore_case=True) == 1
    similarity = compare(docx(tmp_path / "near.docx", ["Dear Sam,", "The meeting is at one."]), gold,
                         content_only=True)
    assert 0.8 < similarity < 1


def test_compare_docx_files_on_a_real_document_and_an_edited_copy(shared_content, tmp_path):
    real = shared_content / "docx" / "IllustrativeCases.docx"
    doc = Document(real)
    doc.save(tmp_path / "resaved.docx")
    next(p for p in doc.paragraphs if p.text.strip()).add_run(" (edited)")
    doc.save(tmp_path / "edited.docx")
    compare = METRICS["compare_docx_files"]
    assert compare(str(tmp_path / "resaved.docx"), str(real), ignore_blanks=False) == 1
    assert compare(str(tmp_path / "edited.docx"), str(real)) == 0


# -- text rules ------------------------------------------------------------------------------------


def test_include_exclude_and_exact_match():
    include = METRICS["check_include_exclude"]
    rules = {"include": ["Total", "2024"], "exclude": ["#DIV/0!"]}
    assert include("Total for 2024: 1,200", rules) == 1
    assert include("Total for 2023", rules) == 0 and include("Total 2024 #DIV/0!", rules) == 0
    assert include(None, rules) == 0
    assert METRICS["exact_match"]("Portrait", {"expected": "Portrait"}) == 1
    assert METRICS["exact_match"]("portrait", {"expected": "Portrait"}) == 0


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
        "freeze-file-url": calc_task("freeze-file-url", options={"rules": [
            {"type": "freeze", "sheet_idx0": 0, "sheet_idx1": "EI0"}, *SHEET]},
            expected={"type": "cloud_file", "path": (root / "files" / "Budget_gold.xlsx").as_uri(),
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
            {"type": "sheet_fuzzy", "sheet_idx0": 0, "sheet_idx1": "EI0", "rules": ["A1:B2"]}]}),
    }
    for name, task in tasks.items():
        (root / f"{name}.json").write_text(json.dumps(task, indent=1))
    (root / "broken.json").write_text('{"id": "broken", "instruction": ')
    return root


def test_load_tasks_lists_unsupported_ones_with_reasons(task_dir):
    tasks, unsupported = load_tasks(task_dir)
    assert sorted(t.id for t in tasks) == ["either", "fill-blank", "freeze-file-url"]
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
    assert "sheet_fuzzy" in unsupported["odd-rules"]
    assert unsupported[str(task_dir / "broken.json")].startswith("malformed JSON")


def test_load_tasks_from_files_reports_missing_local_files_and_duplicates(task_dir, tmp_path):
    (task_dir / "files" / "Budget.xlsx").unlink()
    copy = tmp_path / "copy.json"
    shutil.copy(task_dir / "freeze-file-url.json", copy)
    tasks, unsupported = load_tasks([task_dir / "freeze-file-url.json", copy, tmp_path / "absent.json"])
    assert tasks == []
    assert "Budget.xlsx is not a local file" in unsupported["freeze-file-url"]
    assert "duplicate" in unsupported[f"freeze-file-url ({copy})"]
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
    for task_id in ("fill-blank", "freeze-file-url"):
        task = by_id[task_id]
        passed = evaluate(task.evaluator, gold, task.task_dir, tmp_path / task_id / "gold")
        assert passed.score == 1 and passed.error is None
        failed = evaluate(task.evaluator, initial, task.task_dir, tmp_path / task_id / "initial")
        assert failed.score == 0 and failed.error is None and "Bob" in failed.details[0].reason
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


def test_evaluate_and_averages_and_stops_at_the_first_zero(tmp_path):
    docx(tmp_path / "gold.docx", ["Hello world"])
    near = docx(tmp_path / "near.docx", ["Hello word"])
    fetch = desktop({"/home/user/a.docx": Path(near)})
    calls = {"func": ["compare_docx_files", "check_include_exclude", "compare_docx_files"],
             "result": [{"type": "vm_file", "path": "/home/user/a.docx", "dest": "a.docx"},
                        {"type": "rule", "rules": "Hello"},
                        {"type": "vm_file", "path": "/home/user/a.docx", "dest": "a.docx"}],
             "expected": [{"type": "local_file", "path": "gold.docx"},
                          {"type": "rule", "rules": {"include": ["Hello"]}},
                          {"type": "local_file", "path": "gold.docx"}],
             "options": [{"content_only": True}, None, {}]}
    result = evaluate(calls, fetch, tmp_path, tmp_path / "cache")
    assert [d.func for d in result.details] == calls["func"]  # the last one scores 0 and ends it
    assert result.score == 0 and result.details[-1].reason
    calls["func"][2] = "exact_match"
    calls["result"][2] = {"type": "rule", "rules": 1}
    calls["expected"][2] = {"type": "rule", "rules": {"expected": 1}}
    result = evaluate(calls, fetch, tmp_path, tmp_path / "cache2")
    assert result.score == pytest.approx((fuzz_ratio("Hello word", "Hello world") / 100 + 2) / 3)


def test_registries_name_what_is_supported():
    assert {"download", "upload_file", "open", "launch", "execute", "command", "sleep",
            "activate_window"} == set(STEPS)
    assert {"vm_file", "cloud_file", "local_file", "rule"} == set(GETTERS)
    assert {"compare_table", "compare_pptx_files", "compare_docx_files", "check_include_exclude",
            "exact_match", "check_slides", "check_paragraphs"} == set(METRICS)
