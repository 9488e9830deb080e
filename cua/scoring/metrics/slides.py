"""`compare_pptx_files`: two presentations match slide by slide and shape by shape.

Options (all booleans, default True unless noted), as OSWorld names them:
`examine_number_of_slides`, `examine_shape` (position and size within `approximately_tolerance`,
relative, 0.005), `examine_text`, `examine_indent` (paragraph level), `examine_font_name`,
`examine_font_size`, `examine_font_bold`, `examine_font_italic`, `examine_color_rgb`,
`examine_font_underline`, `examine_strike_through`, `examine_alignment` (unset = left),
`examine_bullets`, `examine_background_color`, `examine_note`, `normalize_runs` (False: merge adjacent
runs of equal formatting first). The shape count per slide (group members included), the paragraph
count per text frame and the run count per paragraph must always match. Colours compare strictly: an
explicit colour differs from an inherited one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from pptx import Presentation
from pptx.enum.dml import MSO_COLOR_TYPE, MSO_FILL
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.enum.text import PP_ALIGN
from pptx.oxml.ns import qn

from cua.scoring.metrics.base import Score, fail

DEFAULTS: dict[str, Any] = {
    "examine_number_of_slides": True, "examine_shape": True, "examine_text": True,
    "examine_indent": True, "examine_font_name": True, "examine_font_size": True,
    "examine_font_bold": True, "examine_font_italic": True, "examine_color_rgb": True,
    "examine_font_underline": True, "examine_strike_through": True, "examine_alignment": True,
    "examine_bullets": True, "examine_background_color": True, "examine_note": True,
    "normalize_runs": False, "approximately_tolerance": 0.005, "enable_debug": False,
}
# OSWorld options tied to single tasks' layouts; a task that turns one on is not supported.
UNSUPPORTED = {"examine_title_bottom_position", "examine_table_bottom_position", "examine_right_position",
               "examine_top_position", "examine_shape_for_shift_size", "examine_image_size",
               "examine_modify_height"}
RUN_OPTIONS = {"name": "examine_font_name", "size": "examine_font_size", "bold": "examine_font_bold",
               "italic": "examine_font_italic", "color": "examine_color_rgb",
               "underline": "examine_font_underline", "strike": "examine_strike_through"}


class Run(NamedTuple):
    """A text run's text and the formatting compared."""

    text: str
    name: str | None
    size: int | None
    bold: bool
    italic: bool
    underline: Any
    color: str | None
    strike: str


def options_problem(options: Mapping[str, Any]) -> str | None:
    """Why `compare_pptx_files` cannot run with `options`, or None."""
    on = sorted(key for key in UNSUPPORTED if options.get(key))
    return f"compare_pptx_files option(s) {', '.join(on)} not supported" if on else None


def compare_pptx_files(result: str | None, expected: str | None, **options: Any) -> float:
    """Score 1 when the presentations match under `options` (see the module docstring), else 0."""
    if result is None:
        return fail("no result presentation")
    if expected is None:
        raise ValueError("compare_pptx_files needs an expected presentation")
    opts = {**DEFAULTS, **options}
    a, b = Presentation(result), Presentation(expected)
    if opts["examine_number_of_slides"] and len(a.slides) != len(b.slides):
        return fail(f"{len(a.slides)} slides != {len(b.slides)}")
    for n, (s1, s2) in enumerate(zip(a.slides, b.slides), 1):
        reason = _compare_slide(s1, s2, opts)
        if reason:
            return fail(f"slide {n}: {reason}")
    return Score(1.0)


def _compare_slide(s1: Any, s2: Any, opts: Mapping[str, Any]) -> str:
    if opts["examine_background_color"] and _background(s1) != _background(s2):
        return f"background {_background(s1)} != {_background(s2)}"
    if opts["examine_note"] and _notes(s1) != _notes(s2):
        return f"notes {_notes(s1)!r} != {_notes(s2)!r}"
    shapes1, shapes2 = list(_shapes(s1.shapes)), list(_shapes(s2.shapes))
    if len(shapes1) != len(shapes2):
        return f"{len(shapes1)} shapes != {len(shapes2)}"
    for m, (sh1, sh2) in enumerate(zip(shapes1, shapes2), 1):
        reason = _compare_shape(sh1, sh2, opts)
        if reason:
            return f"shape {m} ({sh2.name}): {reason}"
    return ""


def _compare_shape(sh1: Any, sh2: Any, opts: Mapping[str, Any]) -> str:
    if opts["examine_shape"]:
        for attr in ("left", "top", "width", "height"):
            x, y = getattr(sh1, attr), getattr(sh2, attr)
            if not _close(x, y, opts["approximately_tolerance"]):
                return f"{attr} {x} != {y}"
    if (sh1.has_table, sh1.has_text_frame) != (sh2.has_table, sh2.has_text_frame):
        return f"{sh1.shape_type} shape != {sh2.shape_type} shape"
    if sh1.has_table:
        return _compare_table(sh1.table, sh2.table, opts)
    if sh1.has_text_frame:
        if opts["examine_text"] and sh1.text_frame.text.strip() != sh2.text_frame.text.strip():
            return f"text {sh1.text_frame.text.strip()!r} != {sh2.text_frame.text.strip()!r}"
        return _compare_paragraphs(sh1.text_frame.paragraphs, sh2.text_frame.paragraphs, opts)
    return ""


def _compare_table(t1: Any, t2: Any, opts: Mapping[str, Any]) -> str:
    if (len(t1.rows), len(t1.columns)) != (len(t2.rows), len(t2.columns)):
        return f"table {len(t1.rows)}x{len(t1.columns)} != {len(t2.rows)}x{len(t2.columns)}"
    for r in range(len(t1.rows)):
        for c in range(len(t1.columns)):
            reason = _compare_paragraphs(t1.cell(r, c).text_frame.paragraphs,
                                         t2.cell(r, c).text_frame.paragraphs, opts)
            if reason:
                return f"cell ({r}, {c}): {reason}"
    return ""


def _compare_paragraphs(ps1: Any, ps2: Any, opts: Mapping[str, Any]) -> str:
    if len(ps1) != len(ps2):
        return f"{len(ps1)} paragraphs != {len(ps2)}"
    for k, (p1, p2) in enumerate(zip(ps1, ps2), 1):
        where = f"paragraph {k}"
        aligned = (p1.alignment or PP_ALIGN.LEFT) == (p2.alignment or PP_ALIGN.LEFT)
        if opts["examine_alignment"] and not aligned:
            return f"{where}: alignment {p1.alignment} != {p2.alignment}"
        if opts["examine_text"] and p1.text != p2.text:
            return f"{where}: text {p1.text!r} != {p2.text!r}"
        if opts["examine_indent"] and p1.level != p2.level:
            return f"{where}: level {p1.level} != {p2.level}"
        if opts["examine_bullets"] and p1.text.strip() and _bullet(p1) != _bullet(p2):
            return f"{where}: bullet {_bullet(p1)} != {_bullet(p2)}"
        runs1, runs2 = _runs(p1, opts["normalize_runs"]), _runs(p2, opts["normalize_runs"])
        if len(runs1) != len(runs2):
            return f"{where}: {len(runs1)} runs != {len(runs2)}"
        for r1, r2 in zip(runs1, runs2):
            for field, option in RUN_OPTIONS.items():
                a, b = getattr(r1, field), getattr(r2, field)
                if opts[option] and a != b:
                    return f"{where}: {field} of {r1.text!r} {a!r} != {b!r}"
    return ""


def _shapes(shapes: Any) -> Iterator[Any]:
    """Shapes in order, each group followed by its members."""
    for shape in shapes:
        yield shape
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes)


def _close(x: int | None, y: int | None, tolerance: float) -> bool:
    if x is None or y is None or x == y:
        return x == y
    return abs(x - y) / max(abs(x), abs(y)) <= tolerance


def _rgb(color_format: Any) -> str | None:
    """A colour as "RRGGBB", "theme:NAME" or None when inherited."""
    if color_format.type is None:
        return None
    if color_format.type == MSO_COLOR_TYPE.RGB:
        return str(color_format.rgb)
    if color_format.type == MSO_COLOR_TYPE.SCHEME:
        return f"theme:{color_format.theme_color}"
    return str(color_format.type)


def _background(slide: Any) -> str | None:
    """The slide's solid background colour, the master's when the slide inherits it."""
    for owner in (slide, slide.slide_layout.slide_master):
        bg = owner.element.cSld.bg
        if bg is None or bg.bgPr is None:
            continue
        fill = owner.background.fill
        if fill.type == MSO_FILL.SOLID:
            return _rgb(fill.fore_color)
        if fill.type != MSO_FILL.BACKGROUND:
            return None
    return None


def _notes(slide: Any) -> str:
    return slide.notes_slide.notes_text_frame.text.strip() if slide.has_notes_slide else ""


def _bullet(paragraph: Any) -> tuple[str, str | None]:
    ppr = paragraph._p.pPr
    if ppr is None:
        return "0", None
    char = ppr.find(qn("a:buChar"))
    return ppr.get("lvl", "0"), char.get("char") if char is not None else None


def _runs(paragraph: Any, normalize: bool) -> list[Run]:
    runs: list[Run] = []
    for run in paragraph.runs:
        font = run.font
        info = Run(run.text, font.name, font.size, bool(font.bold), bool(font.italic),
                   font.underline or False, _rgb(font.color), font._rPr.get("strike", "noStrike"))
        if normalize and runs and runs[-1][1:] == info[1:]:
            runs[-1] = runs[-1]._replace(text=runs[-1].text + info.text)
        else:
            runs.append(info)
    return runs
