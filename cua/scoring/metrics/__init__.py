"""The metrics cua scores its own task families with (OSWorld's own tasks are scored by
desktop-env). Each is called as `metric(result, expected, **options)` (or `metric(result, **options)`
when the task has no expected getter) and returns a float in [0, 1], a `Score` carrying the reason
when it falls short. `compare_table` is OSWorld's metric for the rules the Calc families emit, read
as OSWorld reads workbooks (see `table`); `check_slides` and `check_paragraphs` are cua's own (see
`rules`): OSWorld has no such metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cua.scoring.metrics import rules, table
from cua.scoring.metrics.base import Score, fail, match_rule

METRICS: dict[str, Callable[..., float]] = {
    "compare_table": table.compare_table,
    "check_slides": rules.check_slides,
    "check_paragraphs": rules.check_paragraphs,
}
CUA_ONLY = ("check_slides", "check_paragraphs")  # cua's own: OSWorld has no such metrics
OPTION_CHECKS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "compare_table": table.options_problem,
    "check_slides": rules.options_problem,
    "check_paragraphs": rules.options_problem,
}


def metric_problem(func: str, options: Mapping[str, Any]) -> str | None:
    """Why metric `func` cannot run with `options` here, or None."""
    if func not in METRICS:
        return f"metric {func!r} is not supported"
    check = OPTION_CHECKS.get(func)
    try:
        return check(options) if check else None
    except Exception as e:  # noqa: BLE001 - options of an unexpected shape
        return f"{func}: malformed options ({type(e).__name__}: {e})"


__all__ = ["METRICS", "Score", "fail", "match_rule", "metric_problem"]
