"""One-screen summaries of content files for the goal generator and the judge.

Every part is bounded (see the constants) and the summary says what it leaves out. Cells show what
the user sees: the value cached by the app that saved the file (the formula where none was cached),
with simple number formats applied.
"""

from __future__ import annotations

import math
import re
from contextlib import closing
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import islice
from pathlib import Path

from pydantic import BaseModel

from cua.content.check import content_kind

SHEETS, ROWS, COLUMNS, CELL_CHARS = 8, 5, 10, 30
SLIDES, TEXTS, TITLE_CHARS, TEXT_CHARS = 15, 3, 100, 60
PARAGRAPHS, PARAGRAPH_CHARS = 12, 120
TOTAL_CHARS = 6000  # the whole `as_text()`
UNITS = {"xlsx": "sheet", "pptx": "slide", "docx": "paragraph"}  # what `cut` counts; else line
# A token of an Excel number format: "text", \c, [$€-407], [Red], _c, *c, digits, or one char.
FORMAT_TOKEN = re.compile(r'"(?P<quoted>[^"]*)"|\\(?P<escaped>.)|\[\$(?P<currency>[^\]-]*)[^\]]*\]'
                          r'|\[[^\]]*\]|(?P<pad>_.)|\*.'
                          r'|(?P<digits>(?:[0#?][0#?,]*(?:\.[0#?]*)?|\.[0#?]+),*)'
                          r'|(?P<char>.)', re.DOTALL)
CONDITION = re.compile(r"\[[<>=]")  # a format section that applies under a condition, e.g. [<10]
FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')


class SheetSummary(BaseModel):
    name: str
    size: str                 # used range, e.g. "A1:F25", or "empty"
    rows: list[list[str]]     # the first rows (headers first), cells as displayed text
    cut: str = ""             # which part of the used range `rows` shows, where not all of it


class SlideSummary(BaseModel):
    number: int
    title: str
    texts: list[str]
    cut: str = ""             # e.g. "title cut at 100 characters"


class ContentSummary(BaseModel):
    name: str
    kind: str
    sheets: list[SheetSummary] = []
    slides: list[SlideSummary] = []
    paragraphs: list[str] = []   # Writer: headings and opening paragraphs, with style in []
    cut: str = ""                # e.g. "and 290 more sheets"

    def as_text(self) -> str:
        """The summary as prompt text, at most TOTAL_CHARS characters."""
        lines = [f"File: {self.name} ({self.kind})"]
        for sheet in self.sheets:
            cut = f"; {sheet.cut}" if sheet.cut else ""
            lines.append(f"Sheet '{sheet.name}' ({sheet.size}{cut}):")
            lines += ["  | " + " | ".join(row) for row in sheet.rows]
        for slide in self.slides:
            extra = f" — {'; '.join(slide.texts)}" if slide.texts else ""
            cut = f" ({slide.cut})" if slide.cut else ""
            lines.append(f"Slide {slide.number}: {slide.title or '(no title)'}{extra}{cut}")
        lines += [f"  {p}" for p in self.paragraphs]
        text, tail = "\n".join(lines), [f"({_clip(self.cut, TITLE_CHARS)})"] if self.cut else []
        if len(text) + sum(len(t) + 1 for t in tail) > TOTAL_CHARS:
            tail.insert(0, f"(summary cut at {TOTAL_CHARS} characters)")
            head = text[:TOTAL_CHARS - sum(len(t) + 1 for t in tail)]
            text = head[:head.rfind("\n")] if "\n" in head else head
        return "\n".join([text, *tail])


def summarize(path: Path) -> ContentSummary:
    """Summarise a file that `cua.content.check_content` accepted."""
    kind = content_kind(path)
    summary, more = ContentSummary(name=path.name, kind=kind), 0
    if kind == "xlsx":
        summary.sheets, more = _sheets(path)
    elif kind == "pptx":
        summary.slides, more = _slides(path)
    elif kind == "docx":
        summary.paragraphs, more = _paragraphs(path)
    elif kind in ("csv", "txt", "html"):
        with path.open(encoding="utf-8", errors="replace") as f:
            summary.paragraphs = [_clip(line, PARAGRAPH_CHARS) for line in islice(f, PARAGRAPHS)]
            more = sum(1 for _ in f)
    if more:
        summary.cut = f"and {_more(more, UNITS.get(kind, 'line'))}"
    return summary


def _more(count: int, unit: str) -> str:
    return f"{count} more {unit}{'s' if count != 1 else ''}"


def _line(text: str) -> str:
    """`text` on one line, runs of white space as one space."""
    return " ".join(str(text).split())


def _clip(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters ending in "…" where it was longer."""
    text = _line(text)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _sheets(path: Path) -> tuple[list[SheetSummary], int]:
    """The first SHEETS sheets, and how many more there are."""
    from openpyxl import load_workbook

    with closing(load_workbook(path, read_only=True, data_only=True)) as book, \
            closing(load_workbook(path, read_only=True)) as formulas:
        sheets = book.worksheets
        result = [_sheet(sheet, raw) for sheet, raw in zip(sheets[:SHEETS], formulas.worksheets)]
        return result, len(sheets) - len(result)


def _sheet(sheet, raw) -> SheetSummary:
    """The top-left ROWS x COLUMNS cells of a read-only sheet; `raw`: that sheet with formulas."""
    from openpyxl.utils import get_column_letter

    if sheet.max_row and sheet.max_column:
        size, rows, columns = sheet.calculate_dimension(), sheet.max_row, sheet.max_column
    else:  # no <dimension> in the file: count what the sheet holds
        rows = columns = 0
        for rows, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            columns = max(columns, len(row))
        size = f"A1:{get_column_letter(columns)}{rows}" if rows and columns else "empty"
    cut = [f"first {ROWS} rows"] if rows > ROWS else []
    cut += [f"columns A-{get_column_letter(COLUMNS)}"] if columns > COLUMNS else []
    cells = []
    for shown, formulas in zip(sheet.iter_rows(max_row=ROWS, max_col=COLUMNS),
                               raw.iter_rows(max_row=ROWS, max_col=COLUMNS, values_only=True)):
        row = [_clip(_shown(cell, formula), CELL_CHARS) for cell, formula in zip(shown, formulas)]
        while row and not row[-1]:
            row.pop()
        cells.append(row)
    return SheetSummary(name=_clip(sheet.title, TITLE_CHARS), size=size, rows=cells,
                        cut=" and ".join(cut) + " shown" if cut else "")


def _shown(cell, formula) -> str:
    """What the cell displays: its cached value, formatted, or its formula where none was cached."""
    value = cell.value
    if value is None:  # nothing cached: the formula, unless typed t="str" (a cached empty string)
        if formula is None or cell.data_type == "str":
            return ""
        return formula if isinstance(formula, str) else getattr(formula, "text", None) or "=TABLE()"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (date, time, timedelta)):
        return _when(value, _format(cell))
    if isinstance(value, (int, float)):
        return _number(value, _format(cell))
    return str(value)


def _format(cell) -> str:
    """The cell's number format; General where its style names a custom format the file lacks."""
    try:
        return cell.number_format or "General"
    except IndexError:  # the check's full load accepts such files: it never reads the format
        return "General"


def _when(value: date | time | timedelta, fmt: str) -> str:
    """A date, time or duration in ISO form, with the parts (date, minutes, seconds) `fmt` shows."""
    fmt = FORMAT_LITERALS.sub("", fmt.lower())
    seconds = "s" in fmt
    if isinstance(value, timedelta):  # elapsed time, e.g. [h]:mm
        total = round(value.total_seconds())
        hours, rest = divmod(abs(total), 3600)
        shown = f"{'-' if total < 0 else ''}{hours}:{rest // 60:02}"
        return shown + f":{rest % 60:02}" if seconds else shown
    clock = ("seconds" if seconds else "minutes") if seconds or "h" in fmt else None
    if isinstance(value, time):
        return value.isoformat(clock or "seconds")
    if not isinstance(value, datetime):
        return value.isoformat()
    dated = "d" in fmt or "y" in fmt
    if not dated and clock is None:  # General: all that the value holds
        dated, clock = True, "seconds" if value.time() != time.min else None
    if clock is None:
        return value.date().isoformat()
    return value.isoformat(" ", clock) if dated else value.time().isoformat(clock)


def _number(value: float, fmt: str) -> str:
    """`value` as `fmt` shows it where the format is simple (digits, decimals, thousands separators,
    %, literal text), else as General does: at most 10 significant digits."""
    if not math.isfinite(value) or CONDITION.search(fmt):
        return _general(value)
    sections: list[list[re.Match]] = [[]]
    for token in FORMAT_TOKEN.finditer(fmt):
        if token["char"] == ";":
            sections.append([])
        else:
            sections[-1].append(token)
    index = 1 if value < 0 and len(sections) > 1 else 2 if value == 0 and len(sections) > 2 else 0
    shown = abs(value) if index else value  # the negative and zero sections show the magnitude
    parts, at = [], None  # the shown text in parts; the number goes to parts[at]
    for token in sections[index]:
        char = token["char"] or ""
        if token["digits"]:
            if at is not None or token["digits"].endswith(","):
                return _general(value)  # two number parts (fractions, "00-00") or scaling by 1000
            at, digits = len(parts), token["digits"]
        elif char.isalpha() or char == "@":
            return _general(value)  # General, scientific, text or date parts
        parts.append(" " if token["pad"] else next((t for t in token.groups()[:3] if t), char))
    if at is None:
        return "".join(parts)
    whole, dot, decimals = digits.partition(".")
    required = len(decimals.rstrip("#?"))
    amount = Decimal(repr(shown)) * 100 ** sum(token["char"] == "%" for token in sections[index])
    amount = amount.quantize(Decimal(1).scaleb(-len(decimals)), ROUND_HALF_UP)
    integer, _, fraction = f"{abs(amount):.{len(decimals)}f}".partition(".")
    integer = integer.zfill(whole.count("0")) if "0" in whole else integer.lstrip("0")
    if "," in whole:
        integer = re.sub(r"\B(?=(\d{3})+$)", ",", integer)
    parts[at] = integer + dot + fraction[:required] + fraction[required:].rstrip("0")
    return ("-" if amount < 0 else "") + "".join(parts)


def _general(value: float) -> str:
    """A number as the General format shows it, without float noise."""
    return str(value) if isinstance(value, int) else f"{value:.10g}"


def _slides(path: Path) -> tuple[list[SlideSummary], int]:
    """The first SLIDES slides, and how many more there are."""
    from pptx import Presentation

    slides, result = Presentation(path).slides, []
    for number, slide in enumerate(islice(slides, SLIDES), start=1):
        title_shape = slide.shapes.title  # None, or a placeholder: maybe a picture, without text
        has_title = getattr(title_shape, "has_text_frame", False)
        title = _line(title_shape.text_frame.text) if has_title else ""
        texts = [text for shape in slide.shapes if shape.has_text_frame and shape != title_shape
                 if (text := _line(shape.text_frame.text))]
        cut = [f"title cut at {TITLE_CHARS} characters"] if len(title) > TITLE_CHARS else []
        cut += [_more(len(texts) - TEXTS, "text")] if len(texts) > TEXTS else []
        result.append(SlideSummary(number=number, title=_clip(title, TITLE_CHARS),
                                   texts=[_clip(text, TEXT_CHARS) for text in texts[:TEXTS]],
                                   cut="; ".join(cut)))
    return result, len(slides) - len(result)


def _paragraphs(path: Path) -> tuple[list[str], int]:
    """The first PARAGRAPHS non-empty paragraphs with their style, and how many more there are."""
    from docx import Document

    paragraphs = [p for p in Document(path).paragraphs if p.text.strip()]
    result = []
    for paragraph in paragraphs[:PARAGRAPHS]:
        style = getattr(paragraph.style, "name", None) or ""
        result.append(f"[{_clip(style, CELL_CHARS)}] {_clip(paragraph.text, PARAGRAPH_CHARS)}")
    return result, len(paragraphs) - len(result)
