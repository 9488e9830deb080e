"""`compare_table`: OSWorld's spreadsheet metric, a sequence of rules over a result and an expected
workbook.

Sheets are named as in OSWorld: an int or "RI0" is the result's first sheet, "RNSheet1" the result's
sheet named Sheet1, "EI0"/"ENSheet1" the same in the expected workbook. Supported rule types:

- `sheet_name`: both workbooks have the same sheet names in the same order.
- `sheet_data`: `sheet_idx0` and `sheet_idx1` hold the same cell values (cached formula results), read
  as pandas' `read_excel` reads them (trailing empty rows and columns dropped, error cells and
  "NA"-like strings empty) with numbers rounded to `precision` decimals (4).
- `sheet_print`: the printed sheets are the same lines (`ignore_case`); printed values come from the
  CSV export LibreOffice writes next to the workbook as `<stem>-<sheet>.csv` (a task's postconfig
  runs `libreoffice --convert-to csv …`).
- `sheet_fuzzy`: per `rules[]` entry, every cell of `range` compares `includes` / `included_by` /
  `exact_match` / `fuzzy_match` (`threshold`, 85) after `normalization`, `trim_leadings`,
  `trim_trailings`, `ignore_chars` and `ignore_case`.
- `style`: the style `props` of every cell are equal, with `cellIs` conditional formats applied.
- `freeze`: the same frozen rows and columns.
- `zoom`: the zoom of `sheet_idx` matches the `method`/`ref` rule.
- `check_cell`: cell `coordinate` of `sheet_idx` matches each `props` rule (`value` or a style prop).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import MergedCell
from openpyxl.styles.colors import COLOR_INDEX, Color
from openpyxl.utils.cell import coordinate_from_string, get_column_letter, range_boundaries
from openpyxl.worksheet.worksheet import Worksheet
from rapidfuzz import fuzz

from cua.scoring.metrics.base import Score, fail, match_rule, method_supported

PAIR = ("sheet_idx0", "sheet_idx1")
SHEET_KEYS: dict[str, tuple[str, ...]] = {  # rule type -> its sheet reference fields
    "sheet_name": (), "sheet_data": PAIR, "sheet_print": PAIR, "sheet_fuzzy": PAIR, "style": PAIR,
    "freeze": PAIR, "zoom": ("sheet_idx",), "check_cell": ("sheet_idx",),
}
STYLE_PROPS = {"number_format", "font_name", "font_family", "font_color", "font_bold", "font_italic",
               "font_underline", "font_size", "fill_type", "bgcolor", "fgcolor", "hyperlink", "merge"}
FUZZY_TYPES = {"includes", "included_by", "exact_match", "fuzzy_match"}
# Strings pandas.read_excel reads as missing values.
NA_STRINGS = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
              "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
CF_OPERATORS: dict[str, Callable[[Any, list[Any]], bool]] = {
    "lessThan": lambda v, r: v < r[0],
    "lessThanOrEqual": lambda v, r: v <= r[0],
    "equal": lambda v, r: v == r[0],
    "notEqual": lambda v, r: v != r[0],
    "greaterThanOrEqual": lambda v, r: v >= r[0],
    "greaterThan": lambda v, r: v > r[0],
    "between": lambda v, r: min(r) <= v <= max(r),
    "notBetween": lambda v, r: not min(r) <= v <= max(r),
}
SHEET_REF = re.compile(r"(RI|EI)(\d+)|(RN|EN)(.+)", re.DOTALL)


class Book:
    """A workbook file, opened on first use for cached values and for formulas and styles."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @cached_property
    def values(self) -> openpyxl.Workbook:
        return self._load(data_only=True)

    @cached_property
    def styles(self) -> openpyxl.Workbook:
        return self._load(data_only=False)

    def _load(self, data_only: bool) -> openpyxl.Workbook:
        with warnings.catch_warnings():  # openpyxl warns about every extension it drops
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(self.path, data_only=data_only)

    @property
    def sheet_names(self) -> list[str]:
        return self.values.sheetnames


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
        props = rule.get("props", {} if kind == "check_cell" else [])
        if kind == "style" and (not isinstance(props, list) or set(props) - STYLE_PROPS):
            return f"rule {i} (style): unsupported props {props!r}"
        if kind == "check_cell":
            if not isinstance(rule.get("coordinate"), str) or not isinstance(props, dict) or not props:
                return f"rule {i} (check_cell) needs a coordinate and props"
            for prop, check in props.items():
                if prop != "value" and prop not in STYLE_PROPS:
                    return f"rule {i} (check_cell): unsupported prop {prop!r}"
                if not isinstance(check, dict) or not method_supported(check.get("method")):
                    return f"rule {i} (check_cell): unsupported method in {prop}: {check!r}"
        if kind == "zoom" and not method_supported(rule.get("method")):
            return f"rule {i} (zoom): unsupported method {rule.get('method')!r}"
        if kind == "sheet_fuzzy":
            subs = rule.get("rules")
            if not isinstance(subs, list) or not subs:
                return f"rule {i} (sheet_fuzzy) needs a list of rules"
            for sub in subs:
                if not isinstance(sub, dict) or sub.get("type") not in FUZZY_TYPES or "range" not in sub:
                    return f"rule {i} (sheet_fuzzy): unsupported sub-rule {sub!r}"
    return None


def compare_table(result: str | None, expected: str | None = None, **options: Any) -> float:
    """Score 1 when every rule in `options["rules"]` holds (see the module docstring), else 0."""
    if result is None:
        return fail("no result workbook")
    books = (Book(result), Book(expected) if expected is not None else None)
    for i, rule in enumerate(options["rules"]):
        reason = RULE_CHECKS[rule["type"]](rule, *books)
        if reason:
            return fail(f"rule {i} ({rule['type']}): {reason}")
    return Score(1.0)


# -- rules: each returns the reason it fails, or "" ----------------------------------------------


def _sheet_name(rule: Mapping, result: Book, expected: Book | None) -> str:
    names = result.sheet_names, _need(expected).sheet_names
    return "" if names[0] == names[1] else f"sheet names {names[0]} != {names[1]}"


def _sheet_data(rule: Mapping, result: Book, expected: Book | None) -> str:
    precision = rule.get("precision", 4)
    grids = []
    for key in ("sheet_idx0", "sheet_idx1"):
        book, name = _resolve(rule[key], result, expected)
        if name is None:
            return f"{rule[key]!r}: no such sheet in the result"
        grids.append(_grid(book.values[name], precision))
    if grids[0] == grids[1]:
        return ""
    return _first_difference(*grids)


def _sheet_print(rule: Mapping, result: Book, expected: Book | None) -> str:
    printed = []
    for key in ("sheet_idx0", "sheet_idx1"):
        book, name = _resolve(rule[key], result, expected)
        if name is None:
            return f"{rule[key]!r}: no such sheet in the result"
        lines = _printed(book.path.with_name(f"{book.path.stem}-{name}.csv"))
        printed.append([line.lower() for line in lines] if rule.get("ignore_case") else lines)
    return "" if printed[0] == printed[1] else _first_difference(*printed)


def _sheet_fuzzy(rule: Mapping, result: Book, expected: Book | None) -> str:
    sheets = []
    for key in ("sheet_idx0", "sheet_idx1"):
        book, name = _resolve(rule[key], result, expected)
        if name is None:
            return f"{rule[key]!r}: no such sheet in the result"
        sheets.append(book.values[name])
    for sub in rule["rules"]:
        for coordinate in _cells(sub["range"]):
            a, b = (_fuzzy_text(sheet[coordinate].value, sub) for sheet in sheets)
            kind = sub["type"]
            ok = (b in a if kind == "includes" else a in b if kind == "included_by"
                  else a == b if kind == "exact_match" else fuzz.ratio(a, b) >= sub.get("threshold", 85.0))
            if not ok:
                return f"{coordinate}: {a!r} {kind} {b!r} fails"
    return ""


def _style(rule: Mapping, result: Book, expected: Book | None) -> str:
    props = rule.get("props", [])
    styles = []
    for key in ("sheet_idx0", "sheet_idx1"):
        book, name = _resolve(rule[key], result, expected)
        if name is None:
            return f"{rule[key]!r}: no such sheet in the result"
        styles.append((book.styles[name], book.values[name]))
    coordinates = {c.coordinate for ws, _ in styles for row in ws.iter_rows() for c in row}
    for coordinate in sorted(coordinates, key=_cell_order):
        a, b = (_styled(ws, values, coordinate, props) for ws, values in styles)
        if a != b:
            return f"{coordinate}: {dict(zip(props, a))} != {dict(zip(props, b))}"
    return ""


def _freeze(rule: Mapping, result: Book, expected: Book | None) -> str:
    keys = []
    for key in ("sheet_idx0", "sheet_idx1"):
        book, name = _resolve(rule[key], result, expected)
        if name is None:
            return f"{rule[key]!r}: no such sheet in the result"
        keys.append(_freeze_key(book.styles[name]))
    return "" if keys[0] == keys[1] else f"freeze {keys[0]} != {keys[1]}"


def _zoom(rule: Mapping, result: Book, expected: Book | None) -> str:
    book, name = _resolve(rule["sheet_idx"], result, expected)
    if name is None:
        return f"{rule['sheet_idx']!r}: no such sheet in the result"
    zoom = book.styles[name].sheet_view.zoomScale or 100
    return "" if match_rule(zoom, rule) else f"zoom {zoom} fails {rule['method']} {rule.get('ref')!r}"


def _check_cell(rule: Mapping, result: Book, expected: Book | None) -> str:
    book, name = _resolve(rule["sheet_idx"], result, expected)
    if name is None:
        return f"{rule['sheet_idx']!r}: no such sheet in the result"
    coordinate = rule["coordinate"]
    for prop, check in rule["props"].items():
        if prop == "value":
            value = _cell_value(book.values[name][coordinate].value)
        else:
            value = _cell_style(prop, book.styles[name][coordinate])
        if not match_rule(value, check):
            return f"{coordinate}.{prop} = {value!r} fails {check['method']} {check.get('ref')!r}"
    return ""


RULE_CHECKS: dict[str, Callable[[Mapping, Book, Book | None], str]] = {
    "sheet_name": _sheet_name, "sheet_data": _sheet_data, "sheet_print": _sheet_print,
    "sheet_fuzzy": _sheet_fuzzy, "style": _style, "freeze": _freeze, "zoom": _zoom,
    "check_cell": _check_cell,
}


# -- reading -------------------------------------------------------------------------------------


def _valid_ref(ref: Any) -> bool:
    return (isinstance(ref, int) and not isinstance(ref, bool) and ref >= 0) or (
        isinstance(ref, str) and SHEET_REF.fullmatch(ref) is not None)


def _need(book: Book | None) -> Book:
    if book is None:
        raise ValueError("this rule needs an expected workbook")
    return book


def _resolve(ref: int | str, result: Book, expected: Book | None) -> tuple[Book, str | None]:
    """The workbook and sheet name `ref` names; the name is None when the result lacks that sheet (a
    failed task), while a missing expected sheet is an error in the task."""
    if not _valid_ref(ref):
        raise ValueError(f"bad sheet reference {ref!r}")
    if isinstance(ref, int):
        side, index, name = "R", ref, None
    else:
        match = SHEET_REF.fullmatch(ref)
        side, index, name = ref[0], int(match.group(2)) if match.group(1) else None, match.group(4)
    book = result if side == "R" else _need(expected)
    names = book.sheet_names
    if index is not None:
        name = names[index] if index < len(names) else None
    elif name not in names:
        name = None
    if name is None and side == "E":
        raise ValueError(f"the expected workbook has no sheet {ref!r}")
    return book, name


def _normalise(value: Any, precision: int) -> Any:
    if isinstance(value, str):
        return None if value in NA_STRINGS else value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value), precision) + 0.0
    return value


def _grid(ws: Worksheet, precision: int) -> list[tuple]:
    """Cell values row by row as pandas reads them, trailing empty cells and rows dropped."""
    rows = []
    for row in ws.iter_rows():
        values = [None if cell.data_type == "e" else _normalise(cell.value, precision) for cell in row]
        while values and values[-1] is None:
            values.pop()
        rows.append(tuple(values))
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _first_difference(a: list, b: list) -> str:
    for i, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            return f"row {i}: {x!r} != {y!r}"
    return f"{len(a)} rows != {len(b)} rows"


def _printed(csv: Path) -> list[str]:
    if not csv.is_file():
        raise FileNotFoundError(f"{csv.name}: no printed export of the sheet (the task's postconfig "
                                "must convert the workbook to CSV)")
    data = csv.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _cells(ranges: str | list[str]) -> Iterator[str]:
    for text in [ranges] if isinstance(ranges, str) else ranges:
        for part in text.split():
            min_col, min_row, max_col, max_row = range_boundaries(part)
            for row in range(min_row, max_row + 1):
                for col in range(min_col, max_col + 1):
                    yield f"{get_column_letter(col)}{row}"


def _cell_order(coordinate: str) -> tuple[int, str]:
    column, row = coordinate_from_string(coordinate)
    return row, column.rjust(3)


def _cell_value(value: Any) -> Any:
    """A cell's stored value as OSWorld reads it: numbers as floats."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _fuzzy_text(value: Any, sub: Mapping[str, Any]) -> str:
    text = "" if value is None else str(_cell_value(value))
    for old, new in sub.get("normalization", []):
        text = text.replace(old, new)
    if "trim_leadings" in sub:
        text = text.lstrip(sub["trim_leadings"])
    if "trim_trailings" in sub:
        text = text.rstrip(sub["trim_trailings"])
    if "ignore_chars" in sub:
        text = "".join(ch for ch in text if ch not in sub["ignore_chars"])
    return text.lower() if sub.get("ignore_case") else text


def _color(color: Color | None) -> str | None:
    """An aRGB string for a colour (theme colours as "theme:N")."""
    if color is None:
        return None
    if color.type == "rgb":
        return color.rgb
    if color.type == "indexed":
        return "FF" + COLOR_INDEX[color.indexed][2:] if color.indexed < len(COLOR_INDEX) else None
    return f"{color.type}:{color.value}"


def _cell_style(prop: str, cell: Any, dxf: Any = None) -> Any:
    """One style property of a cell, or of the differential style `dxf` a conditional format applies.
    Font and number-format props of an empty cell are None, as in OSWorld."""
    empty = cell.value is None
    if prop == "merge":
        return isinstance(cell, MergedCell)
    if prop == "hyperlink":
        return None if empty else (cell.hyperlink.target if cell.hyperlink else "")
    if prop in ("fill_type", "bgcolor", "fgcolor"):
        fill = dxf.fill if dxf is not None else cell.fill
        if fill is None:
            return None
        if prop == "fill_type":
            return fill.tagname
        return _color(getattr(fill, "bgColor" if dxf is not None else "fgColor", None))
    if empty:
        return None
    if prop == "number_format":
        if cell.data_type != "n":
            return None
        return (dxf.numFmt.formatCode if dxf.numFmt else None) if dxf is not None else cell.number_format
    font = dxf.font if dxf is not None else cell.font
    if font is None:
        return None
    return {"font_name": lambda: font.name, "font_family": lambda: font.family,
            "font_color": lambda: _color(font.color), "font_bold": lambda: font.b,
            "font_italic": lambda: font.i, "font_underline": lambda: font.u,
            "font_size": lambda: font.sz}[prop]()


def _styled(ws: Worksheet, values: Worksheet, coordinate: str, props: list[str]) -> list[Any]:
    """The cell's style props, from the last `cellIs` conditional format that applies to it if any."""
    cell = ws[coordinate]
    dxf = None
    value = values[coordinate].value
    if value is not None:
        for cf in ws.conditional_formatting:
            if coordinate in cf.sqref:
                for cf_rule in cf.rules:
                    if _cf_applies(cf_rule, value, values):
                        dxf = cf_rule.dxf
    return [_cell_style(prop, cell, dxf) for prop in props]


def _cf_applies(cf_rule: Any, value: Any, values: Worksheet) -> bool:
    if cf_rule.type != "cellIs" or cf_rule.operator not in CF_OPERATORS:
        raise NotImplementedError(f"conditional format {cf_rule.type}/{cf_rule.operator} is not supported")
    refs = [_cf_operand(formula, values) for formula in cf_rule.formula]
    try:
        return CF_OPERATORS[cf_rule.operator](value, refs)
    except TypeError:
        return False


def _cf_operand(formula: str, values: Worksheet) -> Any:
    """A conditional format's operand: a number, a quoted string or a single cell reference."""
    formula = formula.strip()
    if formula.startswith('"') and formula.endswith('"'):
        return formula[1:-1].replace('""', '"')
    try:
        return float(formula)
    except ValueError:
        pass
    if re.fullmatch(r"\$?[A-Z]{1,3}\$?\d+", formula):
        return _cell_value(values[formula.replace("$", "")].value)
    raise NotImplementedError(f"conditional format operand {formula!r} is not supported")


def _freeze_key(ws: Worksheet) -> tuple:
    """Frozen columns and rows; scroll position is not part of it."""
    pane = ws.sheet_view.pane
    if pane is None:
        return ("none",)
    split = (int(pane.xSplit or 0), int(pane.ySplit or 0))
    if (pane.state or "").lower() in ("frozen", "frozensplit"):
        return ("frozen", *split)
    return ("split", *split, pane.topLeftCell)

