"""`compare_table`: OSWorld's spreadsheet metric, for the two rule types cua's Calc families emit.
Workbooks are read the way OSWorld's own `compare_table` (desktop-env) reads them, so that a task
scores the same here as there; tests/test_metric_parity.py holds the two side by side on real
workbooks.

Sheets are named as in OSWorld: an int or "RI0" is the result's first sheet, "RNSheet1" the result's
sheet named Sheet1, "EI0"/"ENSheet1" the same in the expected workbook. Rules:

- `check_cell`: cell `coordinate` of `sheet_idx` matches each `props` rule. `value` is read from the
  sheet's XML part as OSWorld reads it: the part is `xl/worksheets/sheet<sheetId>.xml`, named by the
  sheet's `sheetId` (a workbook whose parts are numbered otherwise reads as empty, or reads another
  sheet's cells, as in OSWorld; LibreOffice numbers them so), the cell by its `r` attribute; numbers
  (dates too) are floats, shared strings their text, formula strings and errors ("#DIV/0!") their
  stripped text, booleans None. Inline strings, which LibreOffice never writes, are their text (OSWorld
  strips them, and reads one with attributes or runs as no text). `font_bold` is the cell's font
  weight, None for an empty cell.
- `sheet_data`: `sheet_idx0` and `sheet_idx1` hold the same data as pandas' `read_excel` reads it:
  the first row gives the column labels, trailing empty rows and cells are dropped (error cells
  count as filled but read as empty, as do "NA"-like strings below the first row), and each column
  compares by its kind (int, float, bool, datetime or object) and values, floats rounded to
  `precision` decimals (4) as numpy rounds them. pandas also converts some columns it reads (numeric
  text to numbers, "True"/"False" to booleans, booleans beside empty cells to numbers); this reading
  does not, so two sheets that differ only so are unequal here and equal in OSWorld. The one family
  that emits the rule, rename_sheet, compares a sheet with itself.

A result workbook openpyxl cannot open fails the metric, whichever rules it has, as in OSWorld.
"""

from __future__ import annotations

import math
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import openpyxl
from defusedxml.ElementTree import fromstring
from openpyxl.utils import get_column_letter

from cua.scoring.metrics.base import Score, fail, match_rule, method_supported

SHEET_KEYS: dict[str, tuple[str, ...]] = {  # rule type -> its sheet reference fields
    "sheet_data": ("sheet_idx0", "sheet_idx1"), "check_cell": ("sheet_idx",),
}
CELL_PROPS = {"value", "font_bold"}
SHEET_REF = re.compile(r"(RI|EI)(\d+)|(RN|EN)(.+)", re.DOTALL)
NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
# Strings pandas.read_excel reads as missing values.
NA_STRINGS = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
              "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}


class _Error:
    """An error cell ("#DIV/0!"): pandas reads it as missing, yet it keeps its row and column."""

    def __repr__(self) -> str:
        return "#ERROR"


ERROR = _Error()

Frame = tuple[tuple, list[tuple[str, tuple]]]  # column labels, (kind, values) of each column


class Book:
    """A workbook file, opened with openpyxl for its sheet names and styles at once (a file openpyxl
    cannot open raises); cell values and sheet data are read on first use."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.styles = _load(self.path)
        self._data: openpyxl.Workbook | None = None
        self._parts: dict[str, dict[str, Element]] = {}
        self._frames: dict[tuple[str, int], Frame | None] = {}
        self._strings: list[str] | None = None

    @property
    def sheet_names(self) -> list[str]:
        return self.styles.sheetnames

    def close(self) -> None:
        if self._data is not None:
            self._data.close()

    def cell_value(self, sheet: str, coordinate: str) -> Any:
        """The cell's value as OSWorld's `read_cell_value` gives it (see the module docstring)."""
        if sheet not in self._parts:
            self._parts[sheet] = self._part(sheet)
        cell = self._parts[sheet].get(coordinate)
        if cell is None:
            return None
        kind = cell.get("t", "n")
        if kind == "inlineStr":  # LibreOffice never writes these; openpyxl does
            inline = cell.find(f"{NS}is")
            return None if inline is None else "".join(t.text or "" for t in inline.iter(f"{NS}t"))
        if kind not in ("n", "s", "str", "e"):
            return None  # booleans and ISO dates
        value = _text(cell.find(f"{NS}v"))
        try:
            if kind == "n":
                return float(value)
            if kind == "s":
                return self._shared_strings()[int(value)]
        except (TypeError, ValueError, IndexError):
            return None
        return value

    def _part(self, sheet: str) -> dict[str, Element]:
        """The cells of the sheet's XML part by their `r` attribute (first one wins); none when the
        part cannot be found or read."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                workbook = fromstring(archive.read("xl/workbook.xml"))
                ids = {s.get("name"): s.get("sheetId")
                       for s in workbook.iterfind(f".//{NS}sheets/{NS}sheet")}
                root = fromstring(archive.read(f"xl/worksheets/sheet{ids[sheet]}.xml"))
        except Exception:  # noqa: BLE001 - as in OSWorld, an unreadable part holds no values
            return {}
        cells: dict[str, Element] = {}
        for row in root.iter(f"{NS}row"):
            for cell in row.iterfind(f"{NS}c"):
                cells.setdefault(cell.get("r"), cell)
        return cells

    def _shared_strings(self) -> list[str]:
        """The shared strings, each the text of all its runs; none at all when the part is missing
        or unreadable, or when any run is empty (OSWorld's reader then drops them all)."""
        if self._strings is None:
            self._strings = []
            try:
                with zipfile.ZipFile(self.path) as archive:
                    root = fromstring(archive.read("xl/sharedStrings.xml"))
            except Exception:  # noqa: BLE001 - as in OSWorld
                return self._strings
            for table in root.iter(f"{NS}sst"):
                for item in table.iterfind(f"{NS}si"):
                    texts = [t.text for t in item.iter(f"{NS}t")]
                    if any(text is None for text in texts):
                        self._strings = []
                        return self._strings
                    self._strings.append("".join(texts))
        return self._strings

    def frame(self, sheet: str, precision: int) -> Frame | None:
        """The sheet as pandas' read_excel reads it (see the module docstring); None when it is not
        a worksheet of the book."""
        key = (sheet, precision)
        if key not in self._frames:
            if self._data is None:
                self._data = _load(self.path, read_only=True, data_only=True, keep_links=False)
            ws = self._data[sheet] if sheet in self._data.sheetnames else None
            with warnings.catch_warnings():  # a read-only sheet reads (and warns) as it goes
                warnings.simplefilter("ignore")
                self._frames[key] = None if ws is None or ws in self._data.chartsheets else _frame(
                    ws, precision)
        return self._frames[key]


def options_problem(options: Mapping[str, Any]) -> str | None:
    """Why `compare_table` cannot run with `options`, or None."""
    rules = options.get("rules")
    if not isinstance(rules, list) or not rules:
        return "compare_table needs a non-empty list of rules"
    for i, rule in enumerate(rules):
        kind = rule.get("type") if isinstance(rule, dict) else None
        if kind not in SHEET_KEYS:
            return f"compare_table rule type {kind!r} is not supported"
        for key in SHEET_KEYS[kind]:
            if not _valid_ref(rule.get(key)):
                return f"rule {i} ({kind}): bad sheet reference {key}={rule.get(key)!r}"
        if kind == "check_cell":
            props = rule.get("props")
            if not isinstance(rule.get("coordinate"), str) or not isinstance(props, dict) or not props:
                return f"rule {i} (check_cell) needs a coordinate and props"
            for prop, check in props.items():
                if prop not in CELL_PROPS:
                    return f"rule {i} (check_cell): unsupported prop {prop!r}"
                if not isinstance(check, dict) or not method_supported(check.get("method")):
                    return f"rule {i} (check_cell): unsupported method in {prop}: {check!r}"
    return None


def compare_table(result: str | None, expected: str | None = None, **options: Any) -> float:
    """Score 1 when every rule in `options["rules"]` holds (see the module docstring), else 0."""
    if result is None:
        return fail("no result workbook")
    books = [Book(result)]
    try:
        books.append(Book(expected) if expected is not None else None)
        for i, rule in enumerate(options["rules"]):
            reason = RULE_CHECKS[rule["type"]](rule, *books)
            if reason:
                return fail(f"rule {i} ({rule['type']}): {reason}")
        return Score(1.0)
    finally:
        for book in books:
            if book is not None:
                book.close()


# -- rules: each returns the reason it fails, or "" ----------------------------------------------


def _sheet_data(rule: Mapping, result: Book, expected: Book | None) -> str:
    precision = rule.get("precision", 4)
    frames = []
    for key in ("sheet_idx0", "sheet_idx1"):
        book, name = _resolve(rule[key], result, expected)
        frame = book.frame(name, precision) if name is not None else None
        if frame is None:
            return f"{rule[key]!r}: no such worksheet"
        frames.append(frame)
    (labels0, columns0), (labels1, columns1) = frames
    if labels0 != labels1:
        return f"column labels {labels0} != {labels1}"
    for j, (a, b) in enumerate(zip(columns0, columns1)):
        if a != b:
            return f"column {get_column_letter(j + 1)} ({labels0[j]!r}): {_difference(a, b)}"
    return ""


def _check_cell(rule: Mapping, result: Book, expected: Book | None) -> str:
    book, name = _resolve(rule["sheet_idx"], result, expected)
    if name is None or name not in book.sheet_names:
        return f"{rule['sheet_idx']!r}: no such sheet"
    coordinate = rule["coordinate"]
    cell = book.styles[name][coordinate]
    for prop, check in rule["props"].items():
        if prop == "value":
            value = book.cell_value(name, coordinate)
        else:
            value = cell.font.b if cell.value is not None else None
        if not match_rule(value, check):
            return f"{coordinate}.{prop} = {value!r} fails {check['method']} {check.get('ref')!r}"
    return ""


RULE_CHECKS: dict[str, Callable[[Mapping, Book, Book | None], str]] = {
    "sheet_data": _sheet_data, "check_cell": _check_cell,
}


# -- reading -------------------------------------------------------------------------------------


def _load(path: Path, **options: Any) -> openpyxl.Workbook:
    with warnings.catch_warnings():  # openpyxl warns about every extension it drops
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(path, **options)


def _valid_ref(ref: Any) -> bool:
    return (isinstance(ref, int) and not isinstance(ref, bool) and ref >= 0) or (
        isinstance(ref, str) and SHEET_REF.fullmatch(ref) is not None)


def _resolve(ref: int | str, result: Book, expected: Book | None) -> tuple[Book, str | None]:
    """The workbook and sheet name `ref` names; the name is None when an index is past its last
    sheet. A missing expected workbook is an error in the task."""
    if not _valid_ref(ref):
        raise ValueError(f"bad sheet reference {ref!r}")
    if isinstance(ref, int):
        side, index, name = "R", ref, None
    else:
        match = SHEET_REF.fullmatch(ref)
        side, index, name = ref[0], int(match.group(2)) if match.group(1) else None, match.group(4)
    if side == "E" and expected is None:
        raise ValueError(f"{ref!r} needs an expected workbook")
    book = result if side == "R" else expected
    if index is not None:
        name = book.sheet_names[index] if index < len(book.sheet_names) else None
    return book, name


def _text(element: Element | None) -> Any:
    """An element's text as OSWorld's reader (xmltodict) gives it: stripped, None when empty or
    absent, and a mapping, equal to no text or number, when the element has attributes."""
    if element is None:
        return None
    text = (element.text or "").strip() or None
    return {**element.attrib, "#text": text} if element.attrib else text


def _frame(ws: Any, precision: int) -> Frame:
    ws.reset_dimensions()  # read the rows the sheet holds, not the size it claims
    rows = []
    for row in ws.rows:
        values = [_pandas_cell(cell) for cell in row]
        while values and values[-1] is None:
            values.pop()
        rows.append(values)
    while rows and not rows[-1]:
        rows.pop()
    width = max(map(len, rows), default=0)
    rows = [row + [None] * (width - len(row)) for row in rows]
    labels = tuple(rows[0]) if rows else ()
    return labels, [_column([row[j] for row in rows[1:]], precision) for j in range(width)]


def _pandas_cell(cell: Any) -> Any:
    """A cell as pandas converts it: numbers as ints when whole, errors as ERROR, empty (or empty
    text) as None."""
    value = cell.value
    if value is None or value == "":
        return None
    if cell.data_type == "e":
        return ERROR
    if cell.data_type == "n" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if math.isfinite(value) and int(value) == value else float(value)
    return value


def _column(values: list[Any], precision: int) -> tuple[str, tuple]:
    """A column's kind and values, as pandas types and rounds it."""
    values = [None if v is ERROR or (isinstance(v, str) and v in NA_STRINGS) else v for v in values]
    present = [v for v in values if v is not None]
    full = len(present) == len(values)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        if full and present and all(isinstance(v, int) for v in present):
            return "int", tuple(values)
        return "float", tuple(None if v is None else _round(float(v), precision) for v in values)
    if full and all(isinstance(v, bool) for v in present):
        return "bool", tuple(values)
    if all(isinstance(v, datetime) for v in present):
        return "datetime", tuple(values)
    return "object", tuple(values)


def _round(value: float, precision: int) -> float:
    """numpy's rounding: scale, round half to even, scale back."""
    scale = 10.0 ** precision
    scaled = value * scale
    return round(scaled) / scale if math.isfinite(scaled) else value


def _difference(a: tuple[str, tuple], b: tuple[str, tuple]) -> str:
    """Where two columns differ: their kinds, a value (rows numbered as in the sheet) or length."""
    if a[0] != b[0]:
        return f"{a[0]} values != {b[0]} values"
    for row, (x, y) in enumerate(zip(a[1], b[1]), 2):
        if x != y:
            return f"row {row}: {x!r} != {y!r}"
    return f"{len(a[1]) + 1} rows != {len(b[1]) + 1} rows"
