"""Tests for cua.content.summary: every accepted file gets a bounded summary of what users see."""

import datetime
import io
import json
import re
import zipfile
from pathlib import Path

import docx
import openpyxl
import pptx
from PIL import Image

from cua.content.check import check_content
from cua.content.summary import TOTAL_CHARS, ContentSummary, summarize

BOUND = 8 << 10  # bytes: a summary must fit one screen of prompt


def rewrite(path: Path, member: str, edit) -> Path:
    """Replace zip member `member` of `path` by `edit(its text)`."""
    with zipfile.ZipFile(path) as zf:
        members = {info: zf.read(info) for info in zf.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in members.items():
            out.writestr(info, edit(data.decode()).encode() if info.filename == member else data)
    return path


def summary_text(path: Path) -> str:
    check_content(path)  # the files below are all accepted: each must get a summary
    text = summarize(path).as_text()
    assert len(text.encode()) < BOUND, text[:300]
    return text


def test_sheet_without_recorded_size(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Costs"
    for row in (["item", "amount", "paid"], ["rent", 900, True], ["power", 75.5, False]):
        book.active.append(row)
    book.create_sheet("Blank")
    book.save(tmp_path / "unsized.xlsx")
    for n in (1, 2):
        rewrite(tmp_path / "unsized.xlsx", f"xl/worksheets/sheet{n}.xml",
                lambda xml: re.sub(r"<dimension [^>]*/>", "", xml))

    text = summary_text(tmp_path / "unsized.xlsx")
    assert "Sheet 'Costs' (A1:C3):\n  | item | amount | paid\n  | rent | 900 | TRUE\n" in text
    assert "Sheet 'Blank' (empty):" in text


def test_cell_whose_style_names_a_missing_number_format(tmp_path):
    book = openpyxl.Workbook()
    book.active.append([1.5, 3])
    book.active["A1"].number_format = "0.000"
    book.save(tmp_path / "format.xlsx")
    rewrite(tmp_path / "format.xlsx", "xl/styles.xml",
            lambda xml: re.sub("<numFmts.*?</numFmts>", "", xml))

    assert "  | 1.5 | 3" in summary_text(tmp_path / "format.xlsx")


def picture_title_deck(path: Path) -> Path:
    """A deck whose slide title placeholder is a picture (p:pic with <p:ph type="title"/>)."""
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, "PNG")
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.placeholders[1].text = "Revenue grew in every region"
    title = slide.shapes.title._element
    picture = slide.shapes.add_picture(io.BytesIO(png.getvalue()), 0, 0)._element
    picture.nvPicPr.nvPr.append(title.nvSpPr.nvPr.ph)
    title.getparent().remove(title)
    deck.save(path)
    return path


def test_picture_in_the_title_placeholder(tmp_path):
    path = picture_title_deck(tmp_path / "picture-title.pptx")
    assert type(pptx.Presentation(path).slides[0].shapes.title).__name__ == "PlaceholderPicture"
    assert "Slide 1: (no title) — Revenue grew in every region" in summary_text(path)


def test_every_accepted_shared_document_is_summarised(shared_content):
    manifest = json.loads((shared_content / "MANIFEST.json").read_text())
    files = [e["file"] for e in manifest
             if e["file"].split("/")[0] in ("xlsx", "pptx", "docx") and e["opens_with_python_libs"]]
    assert files
    failures, sizes = [], {}
    for name in files:
        try:
            sizes[name] = len(summarize(shared_content / name).as_text().encode())
        except Exception as exc:  # noqa: BLE001 - gather every failure, then report them all
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not failures
    assert {name: size for name, size in sizes.items() if not 40 < size < BOUND} == {}


def test_many_sheets_are_cut(tmp_path):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for n in range(300):
        sheet = book.create_sheet(f"Region {n}")
        for r in range(6):
            sheet.append([f"cell {r}-{c} " + "text " * 10 for c in range(12)])
    book.save(tmp_path / "many.xlsx")

    text = summary_text(tmp_path / "many.xlsx")
    assert "Sheet 'Region 0' (A1:L6; first 5 rows and columns A-J shown):" in text
    assert "  | cell 0-0 text text text text… | cell 0-1 text" in text
    assert text.endswith(f"\n(summary cut at {TOTAL_CHARS} characters)\n(and 292 more sheets)")


def test_long_title_and_many_slides_are_cut(tmp_path):
    deck = pptx.Presentation()
    for n in range(40):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = "Budget " * 30_000 if n == 0 else f"Slide {n}"
        slide.placeholders[1].text = "point " * 5_000
    deck.save(tmp_path / "long.pptx")

    text = summary_text(tmp_path / "long.pptx")
    first = text.splitlines()[1]
    assert first.startswith("Slide 1: Budget Budget") and "…" in first
    assert first.endswith("(title cut at 100 characters)")
    assert text.endswith("(and 25 more slides)")


def test_long_documents_and_text_files_are_cut(tmp_path):
    document = docx.Document()
    document.add_heading("Plan " * 1000, level=1)
    for n in range(50):
        document.add_paragraph(f"Paragraph {n}")
    document.save(tmp_path / "long.docx")
    (tmp_path / "long.csv").write_text("\n".join(["a," * 10_000] + [f"{n},x" for n in range(99)]))

    text = summary_text(tmp_path / "long.docx")
    assert "  [Heading 1] Plan Plan" in text and "…" in text.splitlines()[1]
    assert text.endswith("  [Normal] Paragraph 10\n(and 39 more paragraphs)")
    text = summary_text(tmp_path / "long.csv")
    assert len(text.splitlines()[1]) < 130
    assert text.endswith("  10,x\n(and 88 more lines)")


def test_whole_text_is_bounded():
    summary = ContentSummary(name="huge.docx", kind="docx", paragraphs=["word " * 100] * 1000)
    text = summary.as_text()
    assert len(text) <= TOTAL_CHARS
    assert text.endswith(f"\n(summary cut at {TOTAL_CHARS} characters)")


def test_cells_show_what_the_user_sees(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["cached", "=A2*2", "uncached", "=A2+1", "empty", '=IF(A2>0,"","x")'])
    sheet.append([21, "noise", 110.75219999999999, "date", datetime.datetime(2024, 3, 5), None])
    sheet.append(["share", 0.1234, "money", 1234567.891, "neg", -1234.5])
    sheet.append(["time", datetime.datetime(2024, 3, 5, 14, 30), "int", 7, "zero", 0.5])
    sheet["E2"].number_format = "dd/mm/yyyy"
    sheet["B3"].number_format = "0.0%"
    sheet["D3"].number_format = '"$"#,##0.00'
    sheet["F3"].number_format = "#,##0.00_);[Red](#,##0.00)"
    sheet["B4"].number_format = "yyyy-mm-dd hh:mm"
    sheet["F4"].number_format = "0.00"
    book.save(tmp_path / "shown.xlsx")
    # Give B1 the value the app that saved it computed, and F1 a cached empty string.
    rewrite(tmp_path / "shown.xlsx", "xl/worksheets/sheet1.xml",
            lambda xml: xml.replace("<f>A2*2</f><v></v>", "<f>A2*2</f><v>42</v>").replace(
                '<c r="F1">', '<c r="F1" t="str">'))

    rows = summarize(tmp_path / "shown.xlsx").sheets[0].rows
    assert rows == [["cached", "42", "uncached", "=A2+1", "empty"],
                    ["21", "noise", "110.7522", "date", "2024-03-05"],
                    ["share", "12.3%", "money", "$1,234,567.89", "neg", "(1,234.50)"],
                    ["time", "2024-03-05 14:30", "int", "7", "zero", "0.50"]]
