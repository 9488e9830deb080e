"""What metrics share: a score that carries its reason and OSWorld's `{method, ref}` value rules."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any, Self


class Score(float):
    """A metric's score in [0, 1]; `reason` says why it is not full marks."""

    reason: str

    def __new__(cls, value: float, reason: str = "") -> Self:
        score = super().__new__(cls, value)
        score.reason = reason
        return score


def fail(reason: str) -> Score:
    """A zero score with its reason."""
    return Score(0.0, reason)


def method_supported(method: Any) -> bool:
    """Whether `match_rule` implements `method` (eq, ne, re, approx:T): the ones cua's families
    use."""
    if not isinstance(method, str):
        return False
    if method in ("eq", "ne", "re"):
        return True
    if method.startswith("approx:"):
        try:
            float(method[7:])
        except ValueError:
            return False
        return True
    return False


def match_rule(value: Any, rule: Mapping[str, Any]) -> bool:
    """Whether `value` satisfies `{"method": …, "ref": …}` as OSWorld's rules define it.

    `eq`/`ne`: value ==/!= ref; `re`: the pattern ref is found in the text value; `approx:T`:
    |value - ref| <= T, the value read as a float. Values that cannot be compared never match.
    """
    method, ref = rule["method"], rule.get("ref")
    if not method_supported(method):
        raise ValueError(f"unsupported rule method {method!r}")
    try:
        if method in ("eq", "ne"):
            return bool(getattr(operator, method)(value, ref))
        if method == "re":
            return isinstance(value, str) and re.search(ref, value) is not None
        return abs(float(value) - float(ref)) <= float(method[7:])
    except (TypeError, ValueError):
        return False
