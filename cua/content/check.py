"""Prove that a content file opens before it is handed to an app on a live desktop.

`check_content` runs cheap pure checks in this process (signatures, zip CRCs, zip-bomb caps, XML
entity declarations, xlsx and csv rows past LibreOffice Calc's sheet), then loads office files with
their Python library in a child process (`python -m cua.content.check FILE MEMORY_MB`) under an
address-space limit and a wall-clock timeout (ods: also cells past Calc's sheet).
Every failure is a `ContentError` naming the file.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import resource
import signal
import subprocess
import sys
import warnings
import zipfile
from collections import deque
from pathlib import Path

from pydantic import BaseModel

KINDS: dict[str, str] = {
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".ods": "ods", ".csv": "csv",
    ".pptx": "pptx", ".odp": "odp",
    ".docx": "docx", ".odt": "odt",
    ".txt": "txt", ".md": "txt", ".json": "txt", ".html": "html", ".htm": "html",
    ".pdf": "pdf",
}
ODF_MIMETYPES = {
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
}
ZIP_KINDS = {"xlsx", "pptx", "docx", *ODF_MIMETYPES}
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
ZIP_MAGIC = b"PK\x03\x04"
MAX_UNZIPPED = 512 << 20  # total uncompressed bytes in one archive
MAX_RATIO = 200  # uncompressed:compressed, for members over RATIO_FLOOR bytes
RATIO_FLOOR = 1 << 20
MAX_TEXT = 64 << 20  # csv/txt/html size cap
XML_SUFFIXES = (".xml", ".rels", ".vml")
DTD_MARKERS = tuple(m.encode(enc) for m in ("<!DOCTYPE", "<!ENTITY") for enc in ("utf-8", "utf-16-le", "utf-16-be"))
OVERLAP = 64  # bytes kept between chunks, so that no DTD marker or cell address is split
CHUNK = 1 << 20
# BLAS thread pools (numpy is imported by openpyxl) reserve address space per core, which RLIMIT_AS counts.
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Calc's last row and column (XFD): it stops at a modal warning on a file with cells past them.
MAX_ROWS, MAX_COLUMNS = 1 << 20, 1 << 14
# An xlsx row's or cell's r="…" with 7+ row digits or 3+ column letters: maybe past those.
FAR_CELL = re.compile(rb' r=["\']([A-Z]{3,}|[A-Z]{0,2}(?=\d{7}))(\d+)["\']')
ODF_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
ODF_VALUE_TYPE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}value-type"
OUT_OF_MEMORY = 3  # the loader's exit status when it hit the memory limit
REFUSED = 4  # the loader's exit status when it refused the content (a ContentError, reason printed)
DLOPEN_OUT_OF_MEMORY = ("failed to map segment", "cannot allocate memory")  # dlopen's words under RLIMIT_AS


class ContentError(Exception):
    """A file that must not be handed to an app; `str()` is "NAME: reason"."""

    def __init__(self, path: Path, reason: str):
        super().__init__(path, reason)
        self.path, self.reason = Path(path), reason

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


class ContentInfo(BaseModel):
    """A file that passed `check_content`."""

    path: str
    name: str
    kind: str
    size: int
    sha256: str


def content_kind(path: Path) -> str:
    """Kind of `path` from its suffix; the file must exist."""
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise ContentError(path, f"unsupported file type {path.suffix or '(no suffix)'!r}; supported: {' '.join(KINDS)}")
    if not path.is_file():
        raise ContentError(path, "not a regular file" if path.exists() else "file not found")
    return kind


def check_content(path: Path, timeout_s: float = 20.0, memory_mb: int = 1024) -> ContentInfo:
    """Prove `path` opens (see module docstring); raise ContentError otherwise."""
    path = Path(path)
    kind = content_kind(path)
    try:
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as f:
            head = f.read(8)
            f.seek(0)
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        if kind in ZIP_KINDS:
            _check_zip(path, kind, head)
        elif kind == "pdf":
            _check_pdf(path, head)
        else:
            _check_text(path, kind, size)
    except ContentError:
        raise
    except Exception as e:
        raise ContentError(path, f"not a valid {kind}: {_describe(e)}") from None
    if kind in ZIP_KINDS:
        _load_in_child(path, kind, timeout_s, memory_mb)
    return ContentInfo(path=str(path), name=path.name, kind=kind, size=size, sha256=digest.hexdigest())


def _describe(exc: BaseException) -> str:
    """One line "Type: message" (KeyError without its repr quotes)."""
    msg = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else exc
    text = " ".join(str(msg).split())[:400]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_zip(path: Path, kind: str, head: bytes) -> None:
    """Zip signature, size/ratio caps, every member's CRC (as testzip() does), no DTDs in XML parts."""
    if head.startswith(OLE_MAGIC):
        raise ContentError(path, "encrypted or password-protected (OLE container), not an OOXML zip")
    if not head.startswith(ZIP_MAGIC):
        raise ContentError(path, f"not a valid {kind}: not a zip archive (starts with {head[:4]!r})")
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_UNZIPPED:
            raise ContentError(path, f"unzips to {total:,} bytes, over the {MAX_UNZIPPED:,}-byte cap (possible zip bomb)")
        for info in infos:
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
                ratio = info.file_size // max(info.compress_size, 1)
                raise ContentError(path, f"{info.filename} compresses {ratio}:1 (possible zip bomb)")
            _scan_member(path, zf, info, kind)


def _scan_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, kind: str) -> None:
    """Read a member to its end, so zipfile verifies its CRC; refuse DOCTYPE/ENTITY in XML parts,
    and in an xlsx a row or cell address past Calc's sheet."""
    xml, tail = info.filename.lower().endswith(XML_SUFFIXES), b""
    with zf.open(info) as f:
        while chunk := f.read(CHUNK):
            if xml and any(m in tail + chunk for m in DTD_MARKERS):
                raise ContentError(path, f"XML entity declarations (possible entity-expansion bomb) in {info.filename}")
            if xml and kind == "xlsx":
                _check_addresses(path, info.filename, tail + chunk)
            tail = chunk[-OVERLAP:]


def _check_addresses(path: Path, member: str, xml: bytes) -> None:
    """Refuse a row or cell address (`r="…"`) in a piece of an xlsx part that is past Calc's sheet."""
    for m in FAR_CELL.finditer(xml):
        column = functools.reduce(lambda n, letter: n * 26 + letter - 64, m[1], 0)
        if beyond := _beyond_calc(int(m[2]), column):
            raise ContentError(path, f"{beyond} ({m[0].decode().strip()} in {member})")


def _beyond_calc(row: int, column: int) -> str | None:
    """Why a cell at 1-based `row` and `column` is past LibreOffice Calc's sheet, or None."""
    if row > MAX_ROWS:
        return f"row {row} is beyond LibreOffice Calc's {MAX_ROWS:,} rows"
    if column > MAX_COLUMNS:
        return f"column {column} is beyond LibreOffice Calc's {MAX_COLUMNS:,} columns"
    return None


def _check_pdf(path: Path, head: bytes) -> None:
    """A PDF header and an %%EOF marker near the end (catches truncation)."""
    if not head.startswith(b"%PDF-"):
        raise ContentError(path, "not a valid pdf: no %PDF- header")
    with path.open("rb") as f:
        f.seek(max(path.stat().st_size - 1024, 0))
        if b"%%EOF" not in f.read():
            raise ContentError(path, "not a valid pdf: no %%EOF marker at the end (truncated?)")


def _check_text(path: Path, kind: str, size: int) -> None:
    """Size cap, no NUL bytes, UTF-8 (csv may be latin-1, which decodes any byte, but its lines must
    fit in Calc's rows)."""
    if size > MAX_TEXT:
        raise ContentError(path, f"{size >> 20} MiB is over the {MAX_TEXT >> 20} MiB cap for {kind}")
    data = path.read_bytes()
    if b"\0" in data:
        raise ContentError(path, f"not a valid {kind}: contains NUL bytes (binary, not text)")
    if kind != "csv":
        data.decode("utf-8")
        return
    lines = max(data.count(b"\n"), data.count(b"\r")) + (not data.endswith((b"\n", b"\r")))
    if beyond := _beyond_calc(lines, 1):
        raise ContentError(path, f"{beyond} (a row per line)")


def _load_in_child(path: Path, kind: str, timeout_s: float, memory_mb: int) -> None:
    """Run `python -m cua.content.check` on `path`; kill it after `timeout_s`."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
           **SINGLE_THREADED}
    cmd = [sys.executable, "-m", "cua.content.check", str(path), str(memory_mb)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise ContentError(path, f"did not open within {timeout_s:g} s (loader killed)") from None
    except Exception as e:
        raise ContentError(path, f"could not start the loader: {_describe(e)}") from None
    if proc.returncode == 0:
        return
    if proc.returncode < 0:
        raise ContentError(path, f"loader died: {signal.strsignal(-proc.returncode) or -proc.returncode}")
    if not proc.stdout.strip():  # it failed outside main()'s handler, e.g. while importing
        stderr = proc.stderr.strip().splitlines()
        raise ContentError(path, f"loader failed (exit status {proc.returncode}, {memory_mb} MiB memory limit)"
                                 + (f": {stderr[-1][:400]}" if stderr else ""))
    detail = proc.stdout.strip().splitlines()[-1]
    if proc.returncode == REFUSED:
        raise ContentError(path, detail)
    if proc.returncode == OUT_OF_MEMORY:
        raise ContentError(path, f"needs more than {memory_mb} MiB to open ({detail})")
    raise ContentError(path, f"not a valid {kind}: {detail}")


def _load(path: Path, kind: str) -> None:
    """Open `path` fully with its library and touch its content (runs in the child)."""
    if kind == "xlsx":
        import openpyxl

        openpyxl.load_workbook(path)
    elif kind == "pptx":
        from pptx import Presentation

        slides = Presentation(path).slides
        deque((s.text_frame.text for slide in slides for s in slide.shapes if s.has_text_frame), maxlen=0)
    elif kind == "docx":
        import docx

        doc = docx.Document(path)
        deque((p.text for p in doc.paragraphs), maxlen=0)
        deque((c.text for t in doc.tables for row in t.rows for c in row.cells), maxlen=0)
    else:
        from defusedxml.ElementTree import parse

        with zipfile.ZipFile(path) as zf:
            mimetype = zf.read("mimetype").decode("ascii", "replace").strip()
            if mimetype != ODF_MIMETYPES[kind]:
                raise ValueError(f"mimetype is {mimetype!r}, expected {ODF_MIMETYPES[kind]!r}")
            with zf.open("content.xml") as f:
                tables = parse(f, forbid_dtd=True).iter(f"{ODF_TABLE}table") if kind == "ods" else ()
            for table in tables:
                if beyond := _beyond_calc(*_ods_extent(table)):
                    raise ContentError(path, f"{beyond} (table {table.get(f'{ODF_TABLE}name')!r})")


def _ods_extent(table) -> tuple[int, int]:
    """The last row and column of an ods table that hold content, counting repeated rows and cells
    (empty ones, which Calc loads, are often repeated up to or past the sheet's end)."""
    last_row = last_column = row = 0
    for element in table.iter(f"{ODF_TABLE}table-row"):
        repeat, column = int(element.get(f"{ODF_TABLE}number-rows-repeated", 1)), 0
        for cell in element:
            column += int(cell.get(f"{ODF_TABLE}number-columns-repeated", 1))
            if len(cell) or cell.get(ODF_VALUE_TYPE):
                last_row, last_column = row + repeat, max(last_column, column)
        row += repeat
    return last_row, last_column


def main(argv: list[str]) -> int:
    """`python -m cua.content.check FILE MEMORY_MB`: load FILE under RLIMIT_AS; on failure print one line, exit 1, 3 or 4."""
    path, memory_mb = Path(argv[0]), int(argv[1])
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_mb << 20 if hard == resource.RLIM_INFINITY else min(memory_mb << 20, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    warnings.simplefilter("ignore")
    try:
        _load(path, content_kind(path))
    except ContentError as e:
        print(e.reason, flush=True)
        return REFUSED
    except BaseException as e:
        print(_describe(e), flush=True)
        return OUT_OF_MEMORY if _out_of_memory(e) else 1
    return 0


def _out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` means the memory limit was hit, including a C extension that could not be mapped."""
    if isinstance(exc, MemoryError) or getattr(exc, "errno", None) == errno.ENOMEM:
        return True
    return isinstance(exc, ImportError) and any(m in str(exc).lower() for m in DLOPEN_OUT_OF_MEMORY)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
