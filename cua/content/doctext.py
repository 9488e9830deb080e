"""Document text as a reader sees it, shared by the scripted expert's checks and the rule metrics:
slide titles and shape texts of a presentation, paragraph texts of every story of a Word document."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from lxml import etree
from pptx.enum.shapes import PP_PLACEHOLDER

TITLE_TYPES = (PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE)
STORIES = re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml")
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def clean(text: str | None) -> str:
    """Text as a reader sees it: every run of whitespace as one space, none at the ends."""
    return " ".join((text or "").split())


# -- presentations -------------------------------------------------------------------------------


def is_title(shape: Any) -> bool:
    return shape.is_placeholder and shape.placeholder_format.type in TITLE_TYPES


def slide_title(slide: Any) -> str | None:
    """The clean text of the slide's title placeholder, or None when it has none."""
    for shape in slide.shapes:
        if is_title(shape) and shape.has_text_frame:
            return clean(shape.text_frame.text)
    return None


def slide_texts(slide: Any) -> list[str]:
    """Clean, non-empty texts of every top-level shape (and table cell) on the slide."""
    texts = []
    for shape in slide.shapes:
        if shape.has_text_frame:
            texts.append(clean(shape.text_frame.text))
        if getattr(shape, "has_table", False) and shape.has_table:
            texts += [clean(cell.text) for row in shape.table.rows for cell in row.cells]
    return [t for t in texts if t]


# -- Word documents ------------------------------------------------------------------------------


def story_texts(path: str | Path, main_only: bool = False) -> list[str]:
    """The text of every paragraph in every story (body, tables, text boxes, headers, footers,
    notes, comments; only the body with `main_only`), runs joined; the copies of text boxes in
    mc:Fallback are skipped."""
    texts: list[str] = []
    with zipfile.ZipFile(path) as package:
        for name in package.namelist():
            if not STORIES.fullmatch(name) or (main_only and name != "word/document.xml"):
                continue
            parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
            root = etree.fromstring(package.read(name), parser)
            paragraphs: dict = {}
            for node in root.iter(f"{W}t", f"{W}tab", f"{W}br"):
                if any(a.tag == _MC_FALLBACK for a in node.iterancestors()):
                    continue
                paragraph = next(node.iterancestors(f"{W}p"), None)
                if paragraph is not None:
                    text = (node.text or "") if node.tag == f"{W}t" else " "
                    paragraphs.setdefault(paragraph, []).append(text)
            texts += ["".join(parts) for parts in paragraphs.values()]
    return texts


def count_substring(texts: list[str], needle: str) -> int:
    """Case-insensitive occurrences of `needle` anywhere (Writer's default search)."""
    pattern = re.compile(re.escape(needle), re.IGNORECASE)
    return sum(len(pattern.findall(t)) for t in texts)


def count_word(texts: list[str], word: str) -> int:
    """Case-sensitive whole-word occurrences of `word`."""
    pattern = re.compile(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])")
    return sum(len(pattern.findall(t)) for t in texts)
