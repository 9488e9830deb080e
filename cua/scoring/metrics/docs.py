"""`compare_docx_files`: two Word documents hold the same paragraph texts.

Options, as OSWorld names them: `ignore_blanks` (True: compare the whole text with runs of whitespace
collapsed; False: paragraph by paragraph), `ignore_case`, `ignore_order` (sort paragraphs first),
`delete_empty_lines` (drop blank paragraphs first), `content_only` (score = fuzzy similarity of the
collapsed texts), `fuzzy_match` with optional `fuzzy_match_threshold` (score = similarity, or 1/0
against the threshold; per paragraph and averaged when `ignore_blanks` is False).
"""

from __future__ import annotations

import re
from typing import Any

from docx import Document
from rapidfuzz import fuzz

from cua.scoring.metrics.base import Score, fail


def compare_docx_files(result: str | None, expected: str | None, **options: Any) -> float:
    """Score how closely the paragraph texts of `result` match `expected` (see the module docstring)."""
    if result is None:
        return fail("no result document")
    if expected is None:
        raise ValueError("compare_docx_files needs an expected document")
    ignore_case = options.get("ignore_case", False)
    threshold = options.get("fuzzy_match_threshold")
    texts = []
    for path in (result, expected):
        paragraphs = [p.text for p in Document(path).paragraphs]
        if options.get("ignore_order", False):
            paragraphs.sort()
        if options.get("delete_empty_lines", False):
            paragraphs = [p for p in paragraphs if p.strip()]
        texts.append(paragraphs)

    def similarity(a: str, b: str) -> float:
        ratio = fuzz.ratio(a, b) / 100
        return float(ratio >= threshold) if threshold is not None else ratio

    if options.get("content_only", False) or options.get("ignore_blanks", True):
        a, b = (re.sub(r"\s+", " ", "\n".join(p)).strip() for p in texts)
        if ignore_case:
            a, b = a.lower(), b.lower()
        if options.get("content_only", False):
            return Score(fuzz.ratio(a, b) / 100)
        if options.get("fuzzy_match", False):
            return Score(similarity(a, b))
        return Score(1.0) if a == b else fail(_difference(a, b))
    p1, p2 = texts
    if len(p1) != len(p2):
        return fail(f"{len(p1)} paragraphs != {len(p2)}")
    if ignore_case:
        p1, p2 = [p.lower() for p in p1], [p.lower() for p in p2]
    if options.get("fuzzy_match", False):
        return Score(sum(similarity(a, b) for a, b in zip(p1, p2)) / len(p1) if p1 else 1.0)
    for k, (a, b) in enumerate(zip(p1, p2), 1):
        if a != b:
            return fail(f"paragraph {k}: {a!r} != {b!r}")
    return Score(1.0)


def _difference(a: str, b: str) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"texts differ at character {at}: {a[at:at + 40]!r} != {b[at:at + 40]!r}"
