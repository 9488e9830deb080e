"""Scoring a finished task: run the evaluator's getters and metrics and combine their scores.

The caller runs the evaluator's `postconfig` steps on the desktop first (they save the document) and
passes the desktop's file reader as `fetch`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cua.records import EvalResult, MetricResult
from cua.scoring.config import Evaluator, Getter, MetricCall
from cua.scoring.getters import GETTERS, Fetch, GetterContext
from cua.scoring.metrics import METRICS


def evaluate(evaluator: Evaluator | Mapping[str, Any], fetch: Fetch | None, task_dir: str | Path,
             cache_dir: str | Path) -> EvalResult:
    """Score an evaluator config; no exception from getters or metrics escapes (it scores 0).

    Relative local files resolve against `task_dir`; fetched and copied files land in `cache_dir`,
    which should be fresh for each evaluation.
    """
    try:
        spec = evaluator if isinstance(evaluator, Evaluator) else Evaluator.model_validate(evaluator)
    except ValidationError as e:
        return EvalResult(score=0.0, details=[], error=f"invalid evaluator: {e}")
    ctx = GetterContext(fetch, Path(task_dir), Path(cache_dir))
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    details: list[MetricResult] = []
    for call in spec.calls():
        outcome = _run(call, ctx)
        details.append(outcome)
        if (spec.conj == "and" and outcome.score == 0) or (spec.conj == "or" and outcome.score >= 1):
            break
    scores = [d.score for d in details]
    score = max(scores) if spec.conj == "or" else (0.0 if 0 in scores else sum(scores) / len(scores))
    errors = [f"{d.func}: {d.error}" for d in details if d.error]
    return EvalResult(score=score, details=details, error="; ".join(errors) or None)


def _run(call: MetricCall, ctx: GetterContext) -> MetricResult:
    try:
        metric = METRICS[call.func]
        args = [_get(call.result, ctx)]
        if call.expected is not None:
            args.append(_get(call.expected, ctx))
        score = metric(*args, **call.options)
        return MetricResult(func=call.func, score=float(score), reason=getattr(score, "reason", ""))
    except Exception as e:  # a corrupt file, a missing sheet, an unsupported metric…: score 0
        return MetricResult(func=call.func, score=0.0, error=f"{type(e).__name__}: {e}")


def _get(getter: Getter | None, ctx: GetterContext) -> Any:
    if getter is None:
        return None
    if getter.type not in GETTERS:
        raise ValueError(f"getter type {getter.type!r} is not supported")
    return GETTERS[getter.type](getter.config(), ctx)
