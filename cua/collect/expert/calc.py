"""Calc template families of the scripted expert, grounded in real spreadsheets.

Every family reads the workbook with openpyxl at propose time, picks a real target (a table with a
header row, a numeric column, a free cell, a sheet), and its evaluator scores the saved file with
compare_table rules built from what it read from the original. Plans drive LibreOffice Calc 7.x
(English UI, default toolbars, 1920x1080):

- the Name Box at (72, 140) takes a cell, a range or a sheet-qualified address ("'Sheet 1'.A1")
  and moves the cursor or selection there, whatever sheet is active and wherever the cursor is;
- menus open with their accelerators (alt+s Sheet, alt+d Data); inside a menu a unique mnemonic
  letter activates an entry, but duplicates only cycle the highlight (Sheet > Rename Sheet shares
  "h" with Hide Sheet), so that one entry is clicked;
- Data > Sort takes its first key from the column of the cell cursor, which Tab moves inside a
  selection without losing it;
- Calc's AutoInput completes text typed into cells, so plans type only numbers and formulas into
  cells and text only into dialogs.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter, range_boundaries

from cua.actions import Click, Hotkey, Type
from cua.collect.expert.base import (
    ExpertStep,
    Family,
    feasible,
    infeasible,
    result_file,
)
from cua.records import Task, Verdict

# Fixed spots of the Calc window at 1920x1080 (default toolbars, maximised window).
NAME_BOX = (72, 140)
SHEET_MENU = (325, 31)
RENAME_SHEET_ITEM = (382, 509)      # Sheet > Rename Sheet...
SORT_DESCENDING = (1158, 442)       # Sort dialog, Sort Key 1 "Descending" radio
SORT_OK = (1212, 783)               # Sort dialog OK button

MAX_TABLE_ROWS = 400
MAX_TABLE_COLS = 26
MAX_SHEET_CELLS = 5000              # insert_column keeps every constant cell of the sheet in params
MAX_CELL_RULES = 200                # cells an evaluator checks in one way (spread evenly over more)
SAFE_SHEET_NAME = re.compile(r"[A-Za-z0-9 _\-]{1,31}")


# -- reading workbooks ---------------------------------------------------------------------------

def load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(path)


def has_macros(path: Path) -> bool:
    """Files with VBA or ActiveX parts: Calc greets them with a macro warning dialog before the
    document window shows, so the desktop never reaches a ready state on them."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.startswith(("xl/vbaProject", "xl/activeX/")) for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return True


def source_workbook(path: Path):
    """The workbook a family proposes from, or None when it cannot be worked on."""
    if has_macros(path):
        return None
    try:
        return load(path)
    except Exception:  # noqa: BLE001 - a file openpyxl cannot read offers no target
        return None


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_formula(value) -> bool:
    return isinstance(value, str) and value.startswith("=") or (
        value is not None and type(value).__name__ in ("ArrayFormula", "DataTableFormula"))


def is_text(value) -> bool:
    return isinstance(value, str) and value.strip() != "" and not value.startswith("=")


def norm(value):
    """A JSON-able, hashable, round-trip-stable form of a constant cell value other than a boolean
    (numbers as floats with 10 significant digits, dates as ISO text, '' as None)."""
    if value is None or value == "":
        return None
    if is_number(value):
        return float(f"{float(value):.10g}")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def addr(row: int, col: int) -> str:
    return f"{get_column_letter(col)}{row}"


def sheet_ref(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'"


def visible_worksheets(wb, editable: bool = True) -> list:
    """Visible worksheets with plain names; with `editable`, only sheets whose cells are not
    protected (Calc refuses to change a protected sheet)."""
    return [ws for ws in wb.worksheets
            if ws.sheet_state == "visible" and SAFE_SHEET_NAME.fullmatch(ws.title)
            and not (editable and ws.protection.sheet)]


def structure_locked(wb) -> bool:
    """A workbook whose sheets cannot be renamed, added or moved."""
    return bool(wb.security is not None and wb.security.lockStructure)


def merged_cells(ws) -> set[tuple[int, int]]:
    cells = set()
    for rng in ws.merged_cells.ranges:
        for r in range(rng.min_row, rng.max_row + 1):
            for c in range(rng.min_col, rng.max_col + 1):
                cells.add((r, c))
    return cells


def pivot_cells(ws) -> set[tuple[int, int]]:
    """Cells of pivot table outputs: Calc refuses to sort or split them."""
    cells = set()
    for pivot in getattr(ws, "_pivots", ()):
        try:
            min_col, min_row, max_col, max_row = range_boundaries(pivot.location.ref)
        except (AttributeError, TypeError, ValueError):
            continue
        cells.update((r, c) for r in range(min_row, max_row + 1)
                     for c in range(min_col, max_col + 1))
    return cells


def filled(ws) -> dict[tuple[int, int], object]:
    """Non-empty cells of a sheet by (row, col), without materialising empty ones."""
    return {key: cell.value for key, cell in ws._cells.items() if cell.value is not None}


def regions(cells: dict[tuple[int, int], object]) -> list[tuple[int, int, int, int]]:
    """Data areas as (top, left, bottom, right), grown the way Calc grows a selection to the
    current region: a box keeps taking any filled cell that touches its border, diagonals too."""
    seen: set[tuple[int, int]] = set()
    boxes = []
    for start in sorted(cells):
        if start in seen:
            continue
        top, left, bottom, right = start[0], start[1], start[0], start[1]
        while True:
            ring = [(r, c) for r in range(top - 1, bottom + 2) for c in (left - 1, right + 1)]
            ring += [(r, c) for c in range(left, right + 1) for r in (top - 1, bottom + 1)]
            grow = [p for p in ring if p in cells]
            if not grow:
                break
            top = min(top, *(p[0] for p in grow))
            bottom = max(bottom, *(p[0] for p in grow))
            left = min(left, *(p[1] for p in grow))
            right = max(right, *(p[1] for p in grow))
            if (bottom - top) * (right - left) > 200_000:
                break  # a whole-sheet blob: no table worth naming
        seen.update(p for p in cells if top <= p[0] <= bottom and left <= p[1] <= right)
        boxes.append((top, left, bottom, right))
    return boxes


@dataclass
class Table:
    """A data area whose first row is a header of distinct text labels."""

    sheet: str
    top: int
    left: int
    bottom: int
    right: int
    headers: list[str]

    @property
    def body(self) -> range:
        return range(self.top + 1, self.bottom + 1)

    @property
    def cols(self) -> range:
        return range(self.left, self.right + 1)

    @property
    def ref(self) -> str:
        return f"{addr(self.top, self.left)}:{addr(self.bottom, self.right)}"

    @property
    def header_ref(self) -> str:
        return f"{addr(self.top, self.left)}:{addr(self.top, self.right)}"


def tables(wb, min_rows: int = 3, min_cols: int = 2) -> list[Table]:
    found = []
    for ws in visible_worksheets(wb):
        cells = filled(ws)
        if not cells or len(cells) > 200_000:
            continue
        merged = merged_cells(ws) | pivot_cells(ws)
        for top, left, bottom, right in regions(cells):
            if not (min_cols <= right - left + 1 <= MAX_TABLE_COLS
                    and min_rows <= bottom - top <= MAX_TABLE_ROWS):
                continue
            if any(top <= r <= bottom and left <= c <= right for r, c in merged):
                continue
            headers = [cells.get((top, c)) for c in range(left, right + 1)]
            if not all(is_text(h) for h in headers):
                continue
            labels = [h.strip() for h in headers]
            if len(set(labels)) != len(labels):
                continue
            found.append(Table(ws.title, top, left, bottom, right, labels))
    return found


def column_values(ws, table: Table, col: int) -> list:
    return [ws.cell(r, col).value for r in table.body]


def numeric_column(values: list, allow_blanks: bool = True) -> bool:
    present = [v for v in values if v is not None and v != ""]
    if not allow_blanks and len(present) != len(values):
        return False
    return len(present) >= 3 and all(is_number(v) for v in present)


ID_HEADER = re.compile(r"(?i)^(#|n[or]\.?|id|.*\b(id|year|number|code|zip)s?)$")


def identifier_column(header: str, values: list) -> bool:
    """Numbers that label rows (IDs, years, running numbers): summing them means nothing."""
    numbers = [v for v in values if is_number(v)]
    running = all(isinstance(v, int) or float(v).is_integer() for v in numbers) and (
        numbers == list(range(int(numbers[0]), int(numbers[0]) + len(numbers))))
    return bool(ID_HEADER.match(header.strip())) or running


def task_id(family: str, path: Path, params: dict) -> str:
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    return f"{family}-{path.stem}-{digest[:8]}"


# -- shared plan steps ---------------------------------------------------------------------------

def go_to(reference: str, what: str, first: bool = False) -> list[ExpertStep]:
    """Click the Name Box and type a reference: moves the cursor (or selects a range) there."""
    look = ("The spreadsheet is open in LibreOffice Calc. " if first else "")
    return [
        ExpertStep(thought=f"{look}I'll use the Name Box at the left end of the formula bar to "
                           f"get to {what} directly, so I click into it first.",
                   actions=[Click(x=NAME_BOX[0], y=NAME_BOX[1])]),
        ExpertStep(thought=f"The Name Box is active with its content selected. I type "
                           f"{reference} and press Enter to jump there.",
                   actions=[Type(content=f"{reference}\n")]),
    ]


def back_to_sheet(result: str) -> ExpertStep:
    """A last look after a dialog closed. Calc drops the first key press that follows a dialog
    closing (focus is still on its way back to the sheet), so a plan ending with a dialog ends with
    this harmless step and the save that follows is not lost."""
    return ExpertStep(thought=f"The dialog has closed and {result}. I press ctrl+home to go back "
                              "to the top of the sheet and look over the result.",
                      actions=[Hotkey(keys=["ctrl", "home"])])


def find_table(wb, sheet: str, ref: str) -> Table | None:
    for table in tables(wb):
        if table.sheet == sheet and table.ref == ref:
            return table
    return None


# -- evaluators ----------------------------------------------------------------------------------

EMPTY = {"method": "eq", "ref": None}
BOLD = {"method": "eq", "ref": True}
NOT_BOLD = {"method": "ne", "ref": True}  # False, or None for an empty cell
# `norm` writes dates as ISO text, while compare_table reads them as numbers: no rule names them.
# Nor boolean cells, which compare_table (as OSWorld's) reads as no value: families leave them out.
ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d(T[\d:.]+)?|\d\d:\d\d:\d\d(\.\d+)?")


def table_evaluator(remote: str, rules: list[dict]) -> dict:
    """A compare_table evaluator of the workbook at `remote` (no expected workbook)."""
    return {"func": "compare_table", "result": result_file(remote), "options": {"rules": rules}}


def cell_rule(sheet: str, coordinate: str, **props: dict) -> dict:
    """A check_cell rule on the result's sheet named `sheet`."""
    return {"type": "check_cell", "sheet_idx": f"RN{sheet}", "coordinate": coordinate,
            "props": props}


def number_check(number: float) -> dict:
    """Equal up to the last of `norm`'s 10 significant digits."""
    return {"method": f"approx:{max(abs(number), 1.0) * 1e-9:.3g}", "ref": number}


def header_check(text: str) -> dict:
    """The header text, surrounding whitespace allowed (as the families strip it)."""
    return {"method": "re", "ref": rf"^\s*{re.escape(text)}\s*$"}


def value_check(value) -> dict | None:
    """The rule a cell holding the `norm`ed `value` meets; None for a date, which no rule names."""
    if isinstance(value, float):
        return number_check(value)
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        return None
    return {"method": "eq", "ref": value}


def spread(items: list, n: int = MAX_CELL_RULES) -> list:
    """At most `n` of `items`, evenly spread, the first and the last kept."""
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


class CalcFamily(Family):
    """Shared by the Calc families: reading the source workbook, task building, common
    preconditions, opening the task's sheet. Subclasses implement `_propose` and `_judge` on the
    opened workbook."""

    app = "calc"
    kinds = ("xlsx",)

    edits_cells = True  # False: the family changes the workbook, not a sheet's cells

    def propose(self, path: Path, rng: random.Random) -> Task | None:
        wb = source_workbook(path)
        return None if wb is None else self._propose(wb, path, rng)

    def _propose(self, wb, path: Path, rng: random.Random) -> Task | None:
        raise NotImplementedError

    def _task(self, path: Path, instruction: str, params: dict) -> Task:
        return Task(id=task_id(self.name, path, params), instruction=instruction, app=self.app,
                    content=path.name, family=self.name, params=params)

    def judge(self, task: Task, path: Path) -> Verdict:
        if task.family != self.name:
            return infeasible(f"the task belongs to {task.family}, not {self.name}")
        if has_macros(path):
            return infeasible(f"{path.name} carries macros or ActiveX controls: Calc stops on a "
                              "macro warning before showing it")
        wb, ws, bad = self._open(task, path)
        return bad or self._judge(task, path, wb, ws)

    def _judge(self, task: Task, path: Path, wb, ws) -> Verdict:
        """The family's own preconditions, on the opened workbook and the task's sheet."""
        raise NotImplementedError

    def _open(self, task: Task, path: Path):
        """The workbook and the task's sheet, or a Verdict saying why they are unusable."""
        try:
            wb = load(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure makes the file unusable
            return None, None, infeasible(f"{path.name} does not open: {exc}")
        sheet = task.params.get("sheet")
        if sheet is not None and sheet not in wb.sheetnames:
            return wb, None, infeasible(f"there is no sheet '{sheet}' in {path.name}")
        ws = wb[sheet] if sheet is not None else None
        if ws is not None and not hasattr(ws, "cell"):
            return wb, None, infeasible(f"'{sheet}' is a chart sheet, not a worksheet")
        if ws is not None and self.edits_cells and ws.protection.sheet:
            return wb, None, infeasible(f"the sheet '{sheet}' is protected against changes")
        return wb, ws, None


# -- families ------------------------------------------------------------------------------------

FUNCTIONS = {
    "SUM": ("the total", lambda xs: sum(xs)),
    "AVERAGE": ("the average", lambda xs: sum(xs) / len(xs)),
    "MAX": ("the largest value", max),
    "MIN": ("the smallest value", min),
}


class SumColumn(CalcFamily):
    """A formula that summarises a numeric column, in the free cell right below it."""

    name = "calc.sum_column"

    def _propose(self, wb, path: Path, rng: random.Random) -> Task | None:
        options = []
        for table in tables(wb):
            ws = wb[table.sheet]
            for col in table.cols:
                values = column_values(ws, table, col)
                header = table.headers[col - table.left]
                if (numeric_column(values) and not identifier_column(header, values)
                        and ws.cell(table.bottom + 1, col).value is None):
                    options.append((table, col))
        if not options:
            return None
        table, col = rng.choice(options)
        function = rng.choice(sorted(FUNCTIONS))
        numbers = [v for v in column_values(wb[table.sheet], table, col) if is_number(v)]
        phrase, compute = FUNCTIONS[function]
        source = f"{addr(table.top + 1, col)}:{addr(table.bottom, col)}"
        target = addr(table.bottom + 1, col)
        header = table.headers[col - table.left]
        params = {"sheet": table.sheet, "column": get_column_letter(col), "header": header,
                  "source": source, "target": target, "function": function,
                  "expected": compute(numbers), "count": len(numbers)}
        instruction = (f"In the sheet '{table.sheet}', put a formula that computes {phrase} of "
                       f"the {header} column ({source}) in cell {target}.")
        return self._task(path, instruction, params)

    def _judge(self, task: Task, path: Path, wb, ws) -> Verdict:
        p = task.params
        target = ws[p["target"]]
        if target.value is not None:
            return infeasible(f"{p['target']} in '{p['sheet']}' already holds {target.value!r}; "
                              "the result needs a free cell")
        values = [c.value for row in ws[p["source"]] for c in row]
        if not numeric_column(values):
            return infeasible(f"{p['source']} is not a column of at least 3 numbers")
        numbers = [v for v in values if is_number(v)]
        now = FUNCTIONS[p["function"]][1](numbers)
        if not math.isclose(now, p["expected"], rel_tol=1e-9, abs_tol=1e-9):
            return infeasible(f"the numbers in {p['source']} changed since the task was made "
                              f"({p['function']} is now {now}, not {p['expected']})")
        return feasible(f"{p['source']} holds {len(numbers)} numbers and {p['target']} is free")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        formula = f"={p['function']}({p['source']})"
        return [
            *go_to(f"{sheet_ref(p['sheet'])}.{p['target']}",
                   f"cell {p['target']} of the '{p['sheet']}' sheet, just below the "
                   f"{p['header']} numbers", first=True),
            ExpertStep(thought=f"The cursor is now on {p['target']}, the empty cell under the "
                               f"{p['header']} column. I'll type the formula {formula} and press "
                               "Enter to confirm it.",
                       actions=[Type(content=f"{formula}\n")]),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        """The target's value; that it is a formula is beyond compare_table's rules."""
        p = task.params
        return table_evaluator(remote, [cell_rule(p["sheet"], p["target"],
                                                  value=number_check(p["expected"]))])


class SortRange(CalcFamily):
    """Sort a table's rows by one numeric column with Data > Sort (header row kept on top)."""

    name = "calc.sort_range"

    def _propose(self, wb, path: Path, rng: random.Random) -> Task | None:
        options = []
        for table in tables(wb, min_rows=4):
            ws = wb[table.sheet]
            body = [[ws.cell(r, c).value for c in table.cols] for r in table.body]
            if any(v == "" or is_formula(v) or isinstance(v, bool) for row in body for v in row):
                continue  # (OSWorld reads boolean cells as no value: no rule can name them)
            for i, col in enumerate(table.cols):
                keys = [row[i] for row in body]
                if not numeric_column(keys, allow_blanks=False) or len(set(keys)) < 3:
                    continue
                for descending in (False, True):
                    if sorted(keys, reverse=descending) != keys:
                        options.append((table, col, descending))
        if not options:
            return None
        table, col, descending = rng.choice(options)
        header = table.headers[col - table.left]
        ws = wb[table.sheet]
        rows = [[norm(ws.cell(r, c).value) for c in table.cols] for r in table.body]
        params = {"sheet": table.sheet, "range": table.ref, "column": get_column_letter(col),
                  "key_index": col - table.left, "header": header, "descending": descending,
                  "headers": table.headers, "rows": rows}
        order = "largest first (descending)" if descending else "smallest first (ascending)"
        instruction = (f"Sort the table {table.ref} in the sheet '{table.sheet}' by its {header} "
                       f"column, {order}. Keep the header row at the top.")
        return self._task(path, instruction, params)

    def _judge(self, task: Task, path: Path, wb, ws) -> Verdict:
        p = task.params
        table = find_table(wb, p["sheet"], p["range"])
        if table is None:
            return infeasible(f"{p['range']} in '{p['sheet']}' is no longer a table with a "
                              "header row (its data area has changed)")
        body = [[c.value for c in row] for row in ws[p["range"]][1:]]
        keys = [row[p["key_index"]] for row in body]
        if not numeric_column(keys, allow_blanks=False):
            return infeasible(f"column {p['column']} of {p['range']} is not all numbers")
        if sorted(keys, reverse=p["descending"]) == keys:
            return infeasible(f"{p['range']} is already sorted by {p['header']}: nothing to do")
        return feasible(f"{p['range']} has {len(body)} rows, not yet sorted by {p['header']}")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        steps = go_to(f"{sheet_ref(p['sheet'])}.{p['range']}",
                      f"the whole table {p['range']} of the '{p['sheet']}' sheet, header included",
                      first=True)
        for n in range(p["key_index"]):
            steps.append(ExpertStep(
                thought=("The table is selected and the cell cursor sits on its first header. "
                         if n == 0 else "") +
                        f"The sort dialog starts from the cursor's column, so I press Tab to move "
                        f"the cursor right inside the selection towards the {p['header']} "
                        "column.",
                actions=[Hotkey(keys=["tab"])]))
        steps.append(ExpertStep(
            thought=f"The cursor is on the {p['header']} header and the table is still selected. "
                    "I'll open the Data menu with alt+d.",
            actions=[Hotkey(keys=["alt", "d"])]))
        steps.append(ExpertStep(
            thought="The Data menu is open and its first entry, Sort..., is highlighted. "
                    "Pressing Enter opens the Sort dialog.",
            actions=[Hotkey(keys=["enter"])]))
        ok = ExpertStep(thought="", actions=[Click(x=SORT_OK[0], y=SORT_OK[1])])
        if p["descending"]:
            steps.append(ExpertStep(
                thought=f"The Sort dialog shows {p['header']} as Sort Key 1 and 'Range contains "
                        "column labels' is ticked. The order should be descending, so I click "
                        "the Descending option next to Sort Key 1.",
                actions=[Click(x=SORT_DESCENDING[0], y=SORT_DESCENDING[1])]))
            ok.thought = "Descending is selected for Sort Key 1. I click OK to sort the table."
        else:
            ok.thought = (f"The Sort dialog shows {p['header']} as Sort Key 1, Ascending, and "
                          "'Range contains column labels' is ticked, which is what I need. "
                          "I click OK to sort.")
        steps.append(ok)
        steps.append(back_to_sheet(f"the rows are now ordered by {p['header']}"))
        return steps

    def evaluator(self, task: Task, remote: str) -> dict:
        """The headers, then the rows in sorted order: every cell of a small table, the key and
        one more column of a big one. Rows whose key is tied may come in any order, so only
        their keys are checked."""
        p = task.params
        left, top, _, _ = range_boundaries(p["range"])
        key = p["key_index"]
        rows = sorted(p["rows"], key=lambda row: row[key], reverse=p["descending"])
        tied = {k for k, n in Counter(row[key] for row in rows).items() if n > 1}
        width = len(p["headers"])
        cols = range(width) if len(rows) * width <= MAX_CELL_RULES else (key, 1 if key == 0 else 0)
        rules = [cell_rule(p["sheet"], addr(top, left + i), value=header_check(h))
                 for i, h in enumerate(p["headers"])]
        for r, row in enumerate(rows, top + 1):
            for i in cols:
                check = value_check(row[i])
                if check and (i == key or row[key] not in tied):
                    rules.append(cell_rule(p["sheet"], addr(r, left + i), value=check))
        return table_evaluator(remote, rules)


class BoldHeader(CalcFamily):
    """Make a table's header row bold."""

    name = "calc.bold_header"

    def _propose(self, wb, path: Path, rng: random.Random) -> Task | None:
        options = [t for t in tables(wb, min_rows=2)
                   if not any(wb[t.sheet].cell(t.top, c).font.b for c in t.cols)]
        if not options:
            return None
        table = rng.choice(options)
        ws = wb[table.sheet]
        params = {"sheet": table.sheet, "header_ref": table.header_ref, "range": table.ref,
                  "headers": table.headers,
                  "body_bold": [bool(ws.cell(table.top + 1, c).font.b) for c in table.cols]}
        names = ", ".join(table.headers[:4]) + (", …" if len(table.headers) > 4 else "")
        instruction = (f"Make the header row of the table in the sheet '{table.sheet}' "
                       f"({table.header_ref}: {names}) bold.")
        return self._task(path, instruction, params)

    def _judge(self, task: Task, path: Path, wb, ws) -> Verdict:
        p = task.params
        cells = [c for row in ws[p["header_ref"]] for c in row]
        if [c.value.strip() if isinstance(c.value, str) else c.value
                for c in cells] != p["headers"]:
            return infeasible(f"{p['header_ref']} no longer holds the headers {p['headers']}")
        if all(c.font.b for c in cells):
            return infeasible(f"the header row {p['header_ref']} is already bold")
        return feasible(f"{p['header_ref']} holds the headers and is not bold yet")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        return [
            *go_to(f"{sheet_ref(p['sheet'])}.{p['header_ref']}",
                   f"the header row {p['header_ref']} of the '{p['sheet']}' sheet and select it",
                   first=True),
            ExpertStep(thought=f"The header cells {p['header_ref']} are selected. I press ctrl+b "
                               "to make them bold.",
                       actions=[Hotkey(keys=["ctrl", "b"])]),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        """Each header cell keeps its text and is bold; the first body row's cells that were not
        bold are still not."""
        p = task.params
        left, top, right, _ = range_boundaries(p["header_ref"])
        cols = range(left, right + 1)
        rules = [cell_rule(p["sheet"], addr(top, c), value=header_check(h), font_bold=BOLD)
                 for c, h in zip(cols, p["headers"])]
        rules += [cell_rule(p["sheet"], addr(top + 1, c), font_bold=NOT_BOLD)
                  for c, bold in zip(cols, p["body_bold"]) if not bold]
        return table_evaluator(remote, rules)


SHEET_NAMES = ["Summary", "Data", "Report", "Overview", "Archive", "Raw Data", "Figures",
               "Input", "Results", "Reference", "Working Copy", "Final"]


class RenameSheet(CalcFamily):
    """Rename a worksheet through Sheet > Rename Sheet."""

    name = "calc.rename_sheet"
    edits_cells = False

    def _propose(self, wb, path: Path, rng: random.Random) -> Task | None:
        sheets = [] if structure_locked(wb) else visible_worksheets(wb, editable=False)
        taken = {n.casefold() for n in wb.sheetnames}
        names = [n for n in SHEET_NAMES if n.casefold() not in taken]
        if not sheets or not names:
            return None
        ws = rng.choice(sheets)
        cells = filled(ws)
        first_text = next((v.strip() for _, v in sorted(cells.items()) if is_text(v)), None)
        new = rng.choice(names)
        params = {"sheet": ws.title, "new_name": new, "index": wb.sheetnames.index(ws.title),
                  "sheets": wb.sheetnames}
        useful = first_text and first_text.casefold() not in ws.title.casefold()
        hint = f" (the one that starts with '{first_text[:40]}')" if useful else ""
        instruction = f"Rename the sheet '{ws.title}'{hint} to '{new}'."
        return self._task(path, instruction, params)

    def _judge(self, task: Task, path: Path, wb, ws) -> Verdict:
        new = task.params["new_name"]
        if structure_locked(wb):
            return infeasible("the workbook structure is protected: sheets cannot be renamed")
        if new.casefold() in {n.casefold() for n in wb.sheetnames}:
            return infeasible(f"a sheet named '{new}' already exists")
        return feasible(f"'{task.params['sheet']}' exists and '{new}' is free")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        return [
            *go_to(f"{sheet_ref(p['sheet'])}.A1", f"the '{p['sheet']}' sheet", first=True),
            ExpertStep(thought=f"The '{p['sheet']}' sheet is now the active one. Renaming is in "
                               "the Sheet menu, so I click Sheet in the menu bar.",
                       actions=[Click(x=SHEET_MENU[0], y=SHEET_MENU[1])]),
            ExpertStep(thought="The Sheet menu is open. I click 'Rename Sheet...'.",
                       actions=[Click(x=RENAME_SHEET_ITEM[0], y=RENAME_SHEET_ITEM[1])]),
            ExpertStep(thought=f"The Rename Sheet dialog shows the current name '{p['sheet']}', "
                               f"already selected. I type the new name '{p['new_name']}' and "
                               "press Enter to confirm.",
                       actions=[Type(content=f"{p['new_name']}\n")]),
            back_to_sheet(f"the sheet tab now reads '{p['new_name']}'"),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        """The sheet with the new name holds the same data as the sheet at the renamed one's place.
        The original's data is no reference (saving rebuilds pivot table outputs), and
        compare_table has no rule that a name is gone."""
        p = task.params
        return table_evaluator(remote, [{"type": "sheet_data", "sheet_idx0": f"RN{p['new_name']}",
                                         "sheet_idx1": f"RI{p['index']}"}])


class InsertColumn(CalcFamily):
    """Insert an empty column before a table column (Sheet > Insert Columns > Columns Before)."""

    name = "calc.insert_column"

    def _propose(self, wb, path: Path, rng: random.Random) -> Task | None:
        options = []
        for table in tables(wb):
            ws = wb[table.sheet]
            if len(filled(ws)) > MAX_SHEET_CELLS or merged_cells(ws) or pivot_cells(ws):
                continue
            options += [(table, col) for col in table.cols if col > table.left]
        if not options:
            return None
        table, col = rng.choice(options)
        header = table.headers[col - table.left]
        letter = get_column_letter(col)
        cells = [[r, c, norm(v)] for (r, c), v in sorted(filled(wb[table.sheet]).items())
                 if not is_formula(v) and not isinstance(v, bool) and norm(v) is not None]
        params = {"sheet": table.sheet, "column": letter, "col": col, "header": header,
                  "table": table.ref, "cells": cells}
        instruction = (f"In the sheet '{table.sheet}', insert an empty column before column "
                       f"{letter} (the {header} column), so that {header} and everything to its "
                       "right move one column to the right.")
        return self._task(path, instruction, params)

    def _judge(self, task: Task, path: Path, wb, ws) -> Verdict:
        p = task.params
        value = ws.cell(int(re.sub(r"\D", "", p["table"].split(":")[0])), p["col"]).value
        if not (isinstance(value, str) and value.strip() == p["header"]):
            return infeasible(f"column {p['column']} no longer starts with the header "
                              f"'{p['header']}' (found {value!r})")
        if len(filled(ws)) > MAX_SHEET_CELLS:
            return infeasible("the sheet is too large to verify cell by cell")
        return feasible(f"column {p['column']} is the {p['header']} column")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        top = p["table"].split(":")[0]
        row = re.sub(r"\D", "", top)
        return [
            *go_to(f"{sheet_ref(p['sheet'])}.{p['column']}{row}",
                   f"the {p['header']} header in column {p['column']} of the '{p['sheet']}' "
                   "sheet", first=True),
            ExpertStep(thought=f"The cursor is on the {p['header']} header. I press ctrl+space "
                               f"to select the whole column {p['column']}.",
                       actions=[Hotkey(keys=["ctrl", "space"])]),
            ExpertStep(thought=f"Column {p['column']} is selected. I open the Sheet menu with "
                               "alt+s to insert a column.",
                       actions=[Hotkey(keys=["alt", "s"])]),
            ExpertStep(thought="The Sheet menu is open. 'Insert Columns' has the underlined "
                               "letter l; pressing it opens its submenu.",
                       actions=[Hotkey(keys=["l"])]),
            ExpertStep(thought="The submenu offers 'Columns Before' (highlighted) and 'Columns "
                               "After'. I press Enter to insert the column before the selection.",
                       actions=[Hotkey(keys=["enter"])]),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        """The new column is empty, and the constant cells of the table's header row and of the
        columns beside the insertion and at the table's right end are where they belong."""
        p = task.params
        col = p["col"]
        _, top, right, _ = range_boundaries(p["table"])
        rows = range(1, max(r for r, _, _ in p["cells"]) + 1)
        rules = [cell_rule(p["sheet"], addr(r, col), value=EMPTY) for r in spread(list(rows))]
        watched = [(r, c, v) for r, c, v in p["cells"] if r == top or c in (col - 1, col, right)]
        for r, c, value in spread(watched):
            check = value_check(value)
            if check:
                rules.append(cell_rule(p["sheet"], addr(r, c + 1 if c >= col else c), value=check))
        return table_evaluator(remote, rules)


class FillSeries(CalcFamily):
    """Fill a free column beside a table with an arithmetic series (Sheet > Fill Cells > Fill
    Series)."""

    name = "calc.fill_series"

    def _propose(self, wb, path: Path, rng: random.Random) -> Task | None:
        options = []
        for table in tables(wb):
            ws = wb[table.sheet]
            col = table.right + 1
            if all(ws.cell(r, col).value is None for r in range(table.top, table.bottom + 2)):
                options.append(table)
        if not options:
            return None
        table = rng.choice(options)
        start, step = rng.choice([(1, 1), (1, 1), (10, 10), (100, 5), (0, 2), (5, 5)])
        col = table.right + 1
        first, last = addr(table.top + 1, col), addr(table.bottom, col)
        n = table.bottom - table.top
        params = {"sheet": table.sheet, "range": f"{first}:{last}", "start": start, "step": step,
                  "count": n, "column": get_column_letter(col), "col": col,
                  "first_row": table.top + 1, "table": table.ref}
        shown = ", ".join(str(start + i * step) for i in range(3))
        instruction = (f"In the sheet '{table.sheet}', fill {first}:{last} (the free column "
                       f"right of the table {table.ref}) with the series {shown}, … that starts "
                       f"at {start} and goes up by {step} on each row.")
        return self._task(path, instruction, params)

    def _judge(self, task: Task, path: Path, wb, ws) -> Verdict:
        p = task.params
        used = [c.coordinate for row in ws[p["range"]] for c in row if c.value is not None]
        if used:
            return infeasible(f"{p['range']} is not free: {', '.join(used[:5])} hold values")
        return feasible(f"{p['range']} is empty")

    def plan(self, task: Task) -> list[ExpertStep]:
        p = task.params
        return [
            *go_to(f"{sheet_ref(p['sheet'])}.{p['range']}",
                   f"the empty range {p['range']} of the '{p['sheet']}' sheet and select it",
                   first=True),
            ExpertStep(thought=f"{p['range']} is selected. Fill Series is under Sheet > Fill "
                               "Cells, so I open the Sheet menu with alt+s.",
                       actions=[Hotkey(keys=["alt", "s"])]),
            ExpertStep(thought="The Sheet menu is open. 'Fill Cells' has the underlined letter "
                               "i; I press it to open its submenu.",
                       actions=[Hotkey(keys=["i"])]),
            ExpertStep(thought="The Fill Cells submenu is showing. 'Fill Series...' has the "
                               "underlined letter e, so I press e.",
                       actions=[Hotkey(keys=["e"])]),
            ExpertStep(thought="The Fill Series dialog is open with Direction Down and Series "
                               "type Linear already chosen, and the focus on 'Down'. Two Tabs "
                               "take me to the Start value field.",
                       actions=[Hotkey(keys=["tab"]), Hotkey(keys=["tab"])]),
            ExpertStep(thought=f"The cursor is in Start value. I type {p['start']}.",
                       actions=[Type(content=str(p["start"]))]),
            ExpertStep(thought="Two more Tabs skip End value and land in Increment, selecting "
                               "its current 1.",
                       actions=[Hotkey(keys=["tab"]), Hotkey(keys=["tab"])]),
            ExpertStep(thought=f"Increment is selected. I type {p['step']} and press Enter to "
                               "fill the range.",
                       actions=[Type(content=f"{p['step']}\n")]),
            back_to_sheet(f"{p['range']} shows {p['start']}, {p['start'] + p['step']}, … down "
                          "the column"),
        ]

    def evaluator(self, task: Task, remote: str) -> dict:
        """Each cell of the range holds its term of the series; the cells just above and below
        stay empty."""
        p = task.params
        first, col = p["first_row"], p["col"]
        rules = [cell_rule(p["sheet"], addr(first + i, col),
                           value=number_check(p["start"] + i * p["step"]))
                 for i in range(p["count"])]
        rules += [cell_rule(p["sheet"], addr(r, col), value=EMPTY)
                  for r in (first - 1, first + p["count"])]
        return table_evaluator(remote, rules)


FAMILIES: list[Family] = [SumColumn(), SortRange(), BoldHeader(), RenameSheet(), InsertColumn(),
                          FillSeries()]
