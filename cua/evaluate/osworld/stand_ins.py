"""Stand-in files for an OSWorld task's downloads, for runs with no network and no copy of
OSWorld's file cache (`cua bench osworld --stand-ins`): each file the task would fetch and its
cache lacks becomes a generated file of the same kind, seeded by its name, so a task's gold file
differs from the document its setup opens and the untouched state has something to fail."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import re
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from cua.content.documents import (
    PRODUCTS,
    REGIONS,
    make_document,
    make_presentation,
    make_workbook,
)
from cua.evaluate.osworld.cache import cache_entries, task_cache
from cua.evaluate.taskconfig import TaskConfig

TEXT_KINDS = {"txt", "md", "py", "sh", "json", "html", "css", "js", "srt", "tex", "bib", "csv"}
CACHE_PREFIX = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_")
IMAGE_KINDS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF", "webp": "WEBP",
               "pdf": "PDF"}


def write_stand_ins(task: TaskConfig, cache_root: Path) -> tuple[list[str], list[str]]:
    """Generate the task's missing cache files. Returns (names written, problems: a file of a
    kind no stand-in is made for)."""
    folder = task_cache(cache_root, task)
    folder.mkdir(parents=True, exist_ok=True)
    written, problems = [], []
    for entry in cache_entries(task):
        target = folder / entry.name
        if target.exists():
            continue
        kind = _kind(entry.name)
        make = _maker(kind)
        if make is None:
            problems.append(f"{entry.name}: no stand-in for .{kind or '(none)'} files")
            continue
        make(target, int(hashlib.sha256(entry.name.encode()).hexdigest()[:8], 16))
        written.append(entry.name)
    return written, problems


def _kind(name: str) -> str:
    lower = name.lower()
    for archive in ("tar.gz", "tar.xz"):
        if lower.endswith(f".{archive}"):
            return archive
    return Path(lower).suffix.lstrip(".")


def _maker(kind: str) -> Callable[[Path, int], object] | None:
    office = {"xlsx": _workbook, "pptx": make_presentation, "docx": make_document}
    if kind in office:
        return office[kind]
    if kind in IMAGE_KINDS:
        return lambda path, seed: _image(seed).save(path, IMAGE_KINDS[kind])
    if kind in TEXT_KINDS:
        return lambda path, seed: path.write_text(_text(kind, seed))
    if kind == "zip":
        return _zip
    if kind in ("gz", "xz", "tar.gz", "tar.xz"):
        return lambda path, seed: _tar(path, seed, kind.rsplit(".", 1)[-1])
    return None


def _workbook(path: Path, seed: int) -> None:
    """A ledger whose sheets have the default names most of OSWorld's workbooks keep (its rules
    and CSV exports name `Sheet1`)."""
    from openpyxl import load_workbook

    book = load_workbook(make_workbook(path, seed))
    for number, sheet in enumerate(book.worksheets, 1):
        sheet.title = f"Sheet{number}"
    book.save(path)


def _rows(seed: int) -> list[list[object]]:
    rng = random.Random(seed)
    return [["Region", "Product", "Units"]] + [
        [rng.choice(REGIONS), rng.choice(PRODUCTS), rng.randint(1, 40)] for _ in range(12)]


def _text(kind: str, seed: int) -> str:
    if kind == "csv":
        out = io.StringIO()
        csv.writer(out).writerows(_rows(seed))
        return out.getvalue()
    lines = [" ".join(map(str, row)) for row in _rows(seed)]
    return "\n".join(lines) + "\n"


def _image(seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (640, 400), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(560), rng.randrange(320)
        draw.rectangle((x, y, x + 80, y + 80), fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


def _archive_folder(path: Path) -> str:
    """The one folder an archive stand-in holds, named after the archive (`binder.zip` holds
    `binder/`, as the archives OSWorld's tasks unpack and then enter do)."""
    name = CACHE_PREFIX.sub("", path.name)
    for suffix in (".tar.gz", ".tar.xz", ".zip", ".gz", ".xz"):
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return name


def _zip(path: Path, seed: int) -> None:
    folder = _archive_folder(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/notes.txt", _text("txt", seed))
        archive.writestr(f"{folder}/sales.csv", _text("csv", seed))


def _tar(path: Path, seed: int, compression: str) -> None:
    folder = _archive_folder(path)
    with tarfile.open(path, f"w:{compression}") as archive:
        for name, kind in (("notes.txt", "txt"), ("sales.csv", "csv")):
            data = _text(kind, seed).encode()
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
