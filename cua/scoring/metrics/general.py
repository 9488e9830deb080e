"""Text rules on a string result: `check_include_exclude` and `exact_match`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cua.scoring.metrics.base import Score, fail


def check_include_exclude(result: str | None, rules: Mapping[str, list[str]]) -> float:
    """1 when `result` contains every `rules["include"]` string and none of `rules["exclude"]`."""
    if result is None:
        return fail("no result")
    missing = [s for s in rules.get("include", []) if s not in result]
    present = [s for s in rules.get("exclude", []) if s in result]
    if missing or present:
        return fail(f"missing {missing}, unwanted {present}")
    return Score(1.0)


def exact_match(result: Any, rules: Mapping[str, Any]) -> float:
    """1 when `result` equals `rules["expected"]`."""
    if result == rules["expected"]:
        return Score(1.0)
    return fail(f"{result!r} != {rules['expected']!r}")
