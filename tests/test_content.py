"""Tests for cua.content.check: real documents open, broken or hostile ones end in a ContentError."""

import hashlib
import json
import random
import time
import zipfile
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest

from cua.content import check as content
from cua.content.check import KINDS, ODF_MIMETYPES, ContentError, check_content, content_kind

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "content"
MANIFEST = {e["file"]: e for e in json.loads((SHARED / "MANIFEST.json").read_text())} if SHARED.is_dir() else {}
TIMEOUT, MARGIN = 10.0, 5.0
# Why these corrupt files must fail, where the reason is known in advance.
EXPECTED = {
    "54764.xlsx": "entity-expansion",
    "extenxls_pwd123.xlsx": "password-protected",
    "protected_agile.docx": "password-protected",
    "protected_sha512.xlsx": "password-protected",
    "49609.xlsx": "KeyError: There is no item named '[Content_Types].xml'",
    "truncated62886.docx": "BadZipFile",
}


def shared_files(*folders: str) -> list:
    """MANIFEST.json's files in the given folders (not stray files such as lock files), or one skipped case."""
    if not SHARED.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{SHARED} is absent (shared seed content)"))]
    return [pytest.param(SHARED / f, id=f) for f in sorted(MANIFEST) if f.split("/")[0] in folders]


def make_xlsx(path: Path) -> Path:
    wb = openpyxl.Workbook()
    wb.active.append(["region", "sales"])
    for i in range(50):
        wb.active.append([f"r{i}", i * 1.5])
    wb.save(path)
    return path


def make_pptx(path: Path) -> Path:
    prs = pptx.Presentation()
    for title in ("Quarterly review", "Next steps"):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
    prs.save(path)
    return path


def make_docx(path: Path) -> Path:
    doc = docx.Document()
    doc.add_paragraph("Minutes of the meeting.")
    doc.add_table(rows=2, cols=2).cell(0, 0).text = "item"
    doc.save(path)
    return path


def make_zip(path: Path, members: dict[str, bytes], base: Path | None = None) -> Path:
    """A zip of `members`, plus every member of `base` that `members` does not replace."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        if base:
            with zipfile.ZipFile(base) as zf:
                for info in zf.infolist():
                    if info.filename not in members:
                        out.writestr(info, zf.read(info))
        for name, data in members.items():
            out.writestr(name, data)
    return path


def make_odt(path: Path, mimetype: str = "application/vnd.oasis.opendocument.text") -> Path:
    body = b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"/>'
    return make_zip(path, {"mimetype": mimetype.encode(), "content.xml": body})


def rejected(path: Path, **kw) -> ContentError:
    """The ContentError that check_content raises for `path`, after checking it names the file."""
    with pytest.raises(ContentError) as caught:
        check_content(path, **kw)
    err = caught.value
    assert err.path == path and str(err) == f"{path.name}: {err.reason}" and "\n" not in str(err)
    return err


def test_kinds_match_the_contract():
    assert KINDS == {
        ".xlsx": "xlsx", ".xlsm": "xlsx", ".ods": "ods", ".csv": "csv", ".pptx": "pptx", ".odp": "odp",
        ".docx": "docx", ".odt": "odt", ".txt": "txt", ".md": "txt", ".json": "txt", ".html": "html", ".htm": "html", ".pdf": "pdf",
    }


def test_content_kind(tmp_path):
    assert content_kind(make_xlsx(tmp_path / "BOOK.XLSX")) == "xlsx"
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    assert "unsupported file type '.exe'" in str(pytest.raises(ContentError, content_kind, tmp_path / "tool.exe").value)
    assert str(pytest.raises(ContentError, content_kind, tmp_path / "gone.docx").value) == "gone.docx: file not found"
    (tmp_path / "dir.xlsx").mkdir()
    assert rejected(tmp_path / "dir.xlsx").reason == "not a regular file"


def test_unsupported_and_missing_files_rejected(tmp_path):
    (tmp_path / "archive.zip").write_bytes(make_xlsx(tmp_path / "a.xlsx").read_bytes())
    assert "unsupported file type '.zip'" in rejected(tmp_path / "archive.zip").reason
    assert rejected(tmp_path / "missing.pptx").reason == "file not found"


@pytest.mark.parametrize(("name", "make"), [("book.xlsx", make_xlsx), ("deck.pptx", make_pptx), ("memo.docx", make_docx)])
def test_generated_documents_pass(tmp_path, name, make):
    path = make(tmp_path / name)
    info = check_content(path)
    assert (info.path, info.name, info.kind) == (str(path), name, KINDS[path.suffix])
    assert (info.size, info.sha256) == (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.mark.parametrize(("name", "data"), [
    ("prices.csv", "item,price\ncafé,3\n".encode("latin-1")),
    ("notes.txt", "Grüße\n".encode()),
    ("readme.md", b"# Title\n"),
    ("page.html", b"<html><body>hi</body></html>"),
    ("paper.pdf", b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"),
])
def test_text_and_pdf_files_pass(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    assert check_content(tmp_path / name).kind == KINDS[Path(name).suffix]


def test_odf_file_passes(tmp_path):
    assert check_content(make_odt(tmp_path / "letter.odt")).kind == "odt"


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("notes.txt", b"caf\xe9\n", "not a valid txt: UnicodeDecodeError"),
    ("data.csv", b"a,b\n\x00\x01", "NUL bytes"),
    ("paper.pdf", b"<html>not a pdf</html>", "no %PDF- header"),
    ("paper.pdf", b"%PDF-1.4\n1 0 obj <<", "no %%EOF marker"),
    ("book.xlsx", b"PK\x03\x04" + bytes(200), "not a valid xlsx: BadZipFile"),
    ("book.xlsx", b"<html>saved from a browser</html>", "not a zip archive"),
    ("memo.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "password-protected (OLE container)"),
])
def test_bad_bytes_rejected(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    assert reason in rejected(tmp_path / name).reason


def test_wrong_format_behind_a_suffix_rejected(tmp_path):
    """Library and ODF checks catch a valid zip of the wrong kind."""
    renamed = tmp_path / "deck.pptx"
    renamed.write_bytes(make_docx(tmp_path / "memo.docx").read_bytes())
    assert "not a valid pptx: ValueError" in rejected(renamed).reason
    assert "mimetype is 'application/zip'" in rejected(make_odt(tmp_path / "x.odt", "application/zip")).reason
    no_content = make_zip(tmp_path / "y.ods", {"mimetype": b"application/vnd.oasis.opendocument.spreadsheet"})
    assert "KeyError: There is no item named 'content.xml'" in rejected(no_content).reason


@pytest.mark.parametrize(("rows", "reason"), [
    ('<row r="1048577"><c r="B1048577"><v>1</v></c></row>',
     'row 1048577 is beyond LibreOffice Calc\'s 1,048,576 rows (r="1048577" in xl/worksheets/sheet1.xml)'),
    ('<row r="1048577"/>', "row 1048577 is beyond"),  # an empty row too: Calc warns all the same
    ('<row r="52"><c r="XFE52"><v>1</v></c></row>', "column 16385 is beyond LibreOffice Calc's 16,384 columns"),
    ('<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>', None),  # Calc's last cell
], ids=["row", "empty-row", "column", "last-cell"])
def test_xlsx_cells_past_calcs_sheet_rejected(tmp_path, rows, reason):
    """Calc stops at a modal warning on these, so the desktop would never show the workbook."""
    book = make_xlsx(tmp_path / "book.xlsx")
    with zipfile.ZipFile(book) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml").decode()
    sheet = sheet.replace("</sheetData>", f"{rows}</sheetData>")
    far = make_zip(tmp_path / "far.xlsx", {"xl/worksheets/sheet1.xml": sheet.encode()}, book)
    if reason is None:
        assert check_content(far).kind == "xlsx"
    else:
        assert reason in rejected(far).reason


def test_ods_cells_past_calcs_sheet_rejected(tmp_path):
    """Repeated empty rows and cells past the sheet's end load; content past it does not."""
    def ods(name: str, rows: str) -> Path:
        content = ('<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
                   'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
                   'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet>'
                   f'<table:table table:name="Data">{rows}</table:table></office:spreadsheet></office:body>'
                   '</office:document-content>')
        return make_zip(tmp_path / name, {"mimetype": ODF_MIMETYPES["ods"].encode(), "content.xml": content.encode()})
    empty = '<table:table-row table:number-rows-repeated="2000000"><table:table-cell table:number-columns-repeated="20000"/></table:table-row>'
    value = '<table:table-row><table:table-cell table:number-columns-repeated="{}"/><table:table-cell office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>'
    assert check_content(ods("empty.ods", value.format(3) + empty)).kind == "ods"
    assert rejected(ods("low.ods", empty + value.format(3))).reason == (
        "row 2000001 is beyond LibreOffice Calc's 1,048,576 rows (table 'Data')")
    assert rejected(ods("wide.ods", value.format(16384))).reason == (
        "column 16385 is beyond LibreOffice Calc's 16,384 columns (table 'Data')")


def test_csv_lines_past_calcs_rows_rejected(tmp_path):
    (tmp_path / "full.csv").write_bytes(b"1\r\n" * 1_048_576)
    assert check_content(tmp_path / "full.csv").kind == "csv"
    (tmp_path / "long.csv").write_bytes(b"1\n" * 1_048_576 + b"2")
    assert rejected(tmp_path / "long.csv").reason == "row 1048577 is beyond LibreOffice Calc's 1,048,576 rows (a row per line)"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_entity_bomb_rejected(tmp_path, encoding):
    entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    xml = f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE t [{entities}]><t>&a9;</t>'
    bomb = make_zip(tmp_path / "bomb.xlsx", {"docProps/core.xml": xml.encode(encoding)}, make_xlsx(tmp_path / "b.xlsx"))
    start = time.monotonic()
    reason = rejected(bomb).reason
    assert reason == "XML entity declarations (possible entity-expansion bomb) in docProps/core.xml"
    assert time.monotonic() - start < 1.0  # refused by the pure check, never parsed


def test_zip_bombs_rejected(tmp_path, monkeypatch):
    book = make_xlsx(tmp_path / "book.xlsx")
    padded = make_zip(tmp_path / "padded.xlsx", {"xl/media/zeros.bin": bytes(32 << 20)}, book)
    assert "xl/media/zeros.bin compresses" in rejected(padded).reason
    monkeypatch.setattr(content, "MAX_UNZIPPED", 1000)
    assert "over the 1,000-byte cap (possible zip bomb)" in rejected(book).reason


def test_truncated_and_corrupted_copies_rejected(tmp_path):
    data = make_xlsx(tmp_path / "book.xlsx").read_bytes()
    (tmp_path / "cut.xlsx").write_bytes(data[: len(data) * 2 // 3])
    assert "not a valid xlsx: BadZipFile" in rejected(tmp_path / "cut.xlsx").reason
    rng = random.Random(7)
    for i in range(30):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(data))] = rng.randrange(256)
        (tmp_path / f"m{i}.xlsx").write_bytes(mutated)
        try:
            check_content(tmp_path / f"m{i}.xlsx", timeout_s=TIMEOUT)
        except ContentError as e:
            assert str(e).startswith(f"m{i}.xlsx: ")


def test_timeout_kills_the_loader(tmp_path):
    path = make_xlsx(tmp_path / "book.xlsx")
    start = time.monotonic()
    assert rejected(path, timeout_s=0.05).reason == "did not open within 0.05 s (loader killed)"
    assert time.monotonic() - start < MARGIN


def test_memory_limit_applies_to_the_loader(tmp_path):
    path = make_docx(tmp_path / "memo.docx")
    assert "1 MiB" in rejected(path, memory_mb=1).reason
    assert check_content(path, memory_mb=1024).kind == "docx"


@pytest.mark.parametrize("error, status", [
    (MemoryError(), content.OUT_OF_MEMORY),
    (ImportError("etree.so: failed to map segment from shared object"), content.OUT_OF_MEMORY),
    (ImportError("libxml2.so: Cannot allocate memory"), content.OUT_OF_MEMORY),
    (ImportError("No module named 'docx'"), 1),
    (ValueError("bad zip"), 1),
])
def test_loader_tells_the_memory_limit_from_other_failures(tmp_path, monkeypatch, capsys, error, status):
    """Under RLIMIT_AS a library may fail while mapping its C extension: that is the limit, not a bad file."""
    monkeypatch.setattr(content.resource, "setrlimit", lambda *_: None)
    monkeypatch.setattr(content, "_load", lambda *_: (_ for _ in ()).throw(error))
    assert content.main([str(make_docx(tmp_path / "memo.docx")), "1"]) == status
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("path", shared_files("xlsx", "pptx", "docx"))
def test_shared_documents_open(path):
    assert path.is_file()
    info = check_content(path)
    entry = MANIFEST[f"{path.parent.name}/{path.name}"]
    assert (info.kind, info.name, info.size) == (path.parent.name, path.name, path.stat().st_size)
    assert (info.sha256, entry["opens_with_python_libs"]) == (entry["sha256"], True)


@pytest.mark.parametrize("path", shared_files("corrupt"))
def test_shared_corrupt_files_rejected(path):
    start = time.monotonic()
    err = rejected(path, timeout_s=TIMEOUT)
    assert time.monotonic() - start < TIMEOUT + MARGIN
    assert MANIFEST[f"corrupt/{path.name}"]["opens_with_python_libs"] is False
    assert EXPECTED.get(path.name, "") in err.reason
