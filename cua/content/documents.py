"""Realistic, seeded documents for demos and benchmarks (no external content needed): office
files, a web page and plain-text notes."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

REGIONS = ["North", "South", "East", "West", "Central"]
PRODUCTS = ["Laptop", "Monitor", "Keyboard", "Mouse", "Headset", "Webcam", "Dock"]
PRICES = {"Laptop": 1199.0, "Monitor": 289.0, "Keyboard": 59.0, "Mouse": 29.0, "Headset": 89.0,
          "Webcam": 74.0, "Dock": 179.0}


def make_workbook(path: Path, seed: int = 0, rows: int = 24) -> Path:
    """A sales ledger: Date, Region, Product, Units, Unit Price, Revenue (a formula)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    rng = random.Random(seed)
    book = Workbook()
    sheet = book.active
    sheet.title = "Sales"
    sheet.append(["Date", "Region", "Product", "Units", "Unit Price", "Revenue"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    start = date(2026, 1, 5)
    for row in range(2, rows + 2):
        product = rng.choice(PRODUCTS)
        sheet.append([start + timedelta(days=rng.randrange(300)), rng.choice(REGIONS), product,
                      rng.randint(1, 40), PRICES[product], f"=D{row}*E{row}"])
        sheet.cell(row, 1).number_format = "YYYY-MM-DD"
    for column, width in zip("ABCDEF", (12, 10, 11, 7, 11, 12)):
        sheet.column_dimensions[column].width = width
    targets = book.create_sheet("Targets")
    targets.append(["Region", "Target"])
    for region in REGIONS:
        targets.append([region, rng.randrange(20, 80) * 1000])
    book.save(path)
    return path


def make_presentation(path: Path, seed: int = 0) -> Path:
    """A short quarterly-review deck: a title slide and three bullet slides."""
    from pptx import Presentation

    rng = random.Random(seed)
    deck = Presentation()
    title = deck.slides.add_slide(deck.slide_layouts[0])
    title.shapes.title.text = "Quarterly Review"
    title.placeholders[1].text = f"Sales team · Q{rng.randint(1, 4)} 2026"
    for heading in ("Highlights", "Regional Results", "Next Steps"):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = heading
        body = slide.placeholders[1].text_frame
        body.text = f"{rng.choice(REGIONS)} region grew {rng.randint(3, 25)}%"
        for _ in range(2):
            body.add_paragraph().text = (f"{rng.choice(PRODUCTS)} units up "
                                         f"{rng.randint(2, 30)}% on last quarter")
    deck.save(path)
    return path


def make_document(path: Path, seed: int = 0) -> Path:
    """A one-page memo with a heading, paragraphs and a small table."""
    from docx import Document

    rng = random.Random(seed)
    doc = Document()
    doc.add_heading("Memo: Regional Sales", level=1)
    doc.add_paragraph(f"To: Sales leads. From: Operations. Date: 2026-0{rng.randint(1, 9)}-15.")
    for _ in range(3):
        doc.add_paragraph(
            f"The {rng.choice(REGIONS)} region sold {rng.randint(40, 400)} units of "
            f"{rng.choice(PRODUCTS).lower()}s this month. Inventory for the coming quarter "
            "should be planned with the regional leads before the end of the month.")
    table = doc.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Region", "Units"
    for region in REGIONS:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = region, str(rng.randint(40, 400))
    doc.save(path)
    return path


def make_page(path: Path, seed: int = 0) -> Path:
    """A web page: the month's sales by region in a table, and a notes box taking most of the
    window."""
    rng = random.Random(seed)
    rows = "".join(f"<tr><td>{region}</td><td>{rng.randint(40, 400)}</td></tr>"
                   for region in REGIONS)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Regional sales</title></head>"
        "<body style='font-family: sans-serif'><h1>Regional sales</h1>"
        f"<table border='1'><tr><th>Region</th><th>Units</th></tr>{rows}</table>"
        "<p><label for='notes'>Notes</label></p>"
        "<textarea id='notes' style='width: 90%; height: 60vh'></textarea></body></html>")
    return path


def make_notes(path: Path, seed: int = 0) -> Path:
    """Meeting notes in plain text: a heading and a line per region and product."""
    rng = random.Random(seed)
    lines = ["Sales meeting notes", ""]
    lines += [f"- {rng.choice(REGIONS)}: {rng.randint(2, 40)} {rng.choice(PRODUCTS).lower()}s "
              f"on order, follow up by {rng.randint(1, 28)} March" for _ in range(30)]
    path.write_text("\n".join(lines) + "\n")
    return path


# `content.generate` kinds of a collect recipe: the maker and the file name pattern.
GENERATORS = {"workbooks": (make_workbook, "sales-{}.xlsx"),
              "presentations": (make_presentation, "review-{}.pptx"),
              "documents": (make_document, "memo-{}.docx")}
