"""One-screen summaries of content files for the goal generator and the judge."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from cua.content.check import content_kind

ROWS, COLUMNS, SLIDES, PARAGRAPHS, CELL_CHARS, PARAGRAPH_CHARS = 5, 12, 20, 12, 40, 120


class SheetSummary(BaseModel):
    name: str
    size: str                 # used range, e.g. "A1:F25"
    rows: list[list[str]]     # the first rows (headers first), cells as displayed text


class SlideSummary(BaseModel):
    number: int
    title: str
    texts: list[str]


class ContentSummary(BaseModel):
    name: str
    kind: str
    sheets: list[SheetSummary] = []
    slides: list[SlideSummary] = []
    paragraphs: list[str] = []   # Writer: headings and opening paragraphs, with style in []

    def as_text(self) -> str:
        """The summary as prompt text."""
        lines = [f"File: {self.name} ({self.kind})"]
        for sheet in self.sheets:
            lines.append(f"Sheet '{sheet.name}' ({sheet.size}):")
            lines += ["  | " + " | ".join(row) for row in sheet.rows]
        for slide in self.slides:
            extra = f" — {'; '.join(slide.texts)}" if slide.texts else ""
            lines.append(f"Slide {slide.number}: {slide.title or '(no title)'}{extra}")
        lines += [f"  {p}" for p in self.paragraphs]
        return "\n".join(lines)


def summarize(path: Path) -> ContentSummary:
    """Summarise a file that `cua.content.check_content` accepted."""
    kind = content_kind(path)
    summary = ContentSummary(name=path.name, kind=kind)
    if kind == "xlsx":
        summary.sheets = _sheets(path)
    elif kind == "pptx":
        summary.slides = _slides(path)
    elif kind == "docx":
        summary.paragraphs = _paragraphs(path)
    elif kind in ("csv", "txt", "html"):
        summary.paragraphs = path.read_text(errors="replace").splitlines()[:PARAGRAPHS]
    return summary


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS - 1] + "…"


def _sheets(path: Path) -> list[SheetSummary]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        result = []
        for sheet in book.worksheets:
            rows = [[_cell(v) for v in row[:COLUMNS]]
                    for row in sheet.iter_rows(max_row=ROWS, values_only=True)]
            result.append(SheetSummary(name=sheet.title, size=sheet.calculate_dimension(),
                                       rows=rows))
        return result
    finally:
        book.close()


def _slides(path: Path) -> list[SlideSummary]:
    from pptx import Presentation

    result = []
    for number, slide in enumerate(Presentation(path).slides, start=1):
        title = slide.shapes.title.text_frame.text if slide.shapes.title is not None else ""
        texts = [_cell(shape.text_frame.text.replace("\n", " ")) for shape in slide.shapes
                 if shape.has_text_frame and shape != slide.shapes.title
                 and shape.text_frame.text.strip()]
        result.append(SlideSummary(number=number, title=title.strip(), texts=texts[:3]))
        if number == SLIDES:
            break
    return result


def _paragraphs(path: Path) -> list[str]:
    from docx import Document

    result = []
    for paragraph in Document(path).paragraphs:
        text = paragraph.text.strip()
        if text:
            style = paragraph.style.name if paragraph.style is not None else ""
            result.append(f"[{style}] {text[:PARAGRAPH_CHARS]}")
        if len(result) == PARAGRAPHS:
            break
    return result
