"""What metrics share: a score that carries its reason and OSWorld's `{method, ref}` value rules."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any, Self

COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge"}


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
    """Whether `match_rule` implements `method` (eq…ge, re[.FLAG…], approx:T, range.XY, str_list_eq,
    str_set_eq)."""
    if not isinstance(method, str):
        return False
    if method in COMPARISONS or method in ("str_list_eq", "str_set_eq"):
        return True
    if method == "re" or method.startswith("re."):
        return all(isinstance(getattr(re, flag, None), re.RegexFlag) for flag in method.split(".")[1:])
    if method.startswith("approx:"):
        try:
            float(method[7:])
        except ValueError:
            return False
        return True
    return len(method) == 8 and method.startswith("range.") and set(method[6:]) <= {"t", "e"}


def match_rule(value: Any, rule: Mapping[str, Any]) -> bool:
    """Whether `value` satisfies `{"method": …, "ref": …}` as OSWorld's rules define it.

    `re.I.M`: `ref` is a pattern searched in the text value; `approx:T`: |value - ref| <= T;
    `range.te`: ref[0] < value <= ref[1] (t: strict, e: or equal); `str_list_eq`/`str_set_eq`: the
    comma-separated text value equals `ref` as a list/set. Values that cannot be compared never match.
    """
    method, ref = rule["method"], rule.get("ref")
    if not method_supported(method):
        raise ValueError(f"unsupported rule method {method!r}")
    try:
        if method in COMPARISONS:
            return bool(getattr(operator, method)(value, ref))
        if method == "re" or method.startswith("re."):
            flags = re.RegexFlag(0)
            for flag in method.split(".")[1:]:
                flags |= getattr(re, flag)
            return isinstance(value, str) and re.search(ref, value, flags) is not None
        if method.startswith("approx:"):
            return abs(float(value) - float(ref)) <= float(method[7:])
        if method.startswith("range."):
            low = operator.lt if method[6] == "t" else operator.le
            high = operator.lt if method[7] == "t" else operator.le
            return bool(low(ref[0], value) and high(value, ref[1]))
        items = value.strip("\"'").split(",")
        return list(items) == list(ref) if method == "str_list_eq" else set(items) == set(ref)
    except (TypeError, ValueError, AttributeError):
        return False
