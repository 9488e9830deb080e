"""OSWorld evaluator configs: metrics with their getters and options, combined by `conj`."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Getter(_Open):
    """A getter config: `type` plus the getter's own fields (path, dest, rules, …)."""

    type: str

    def config(self) -> dict[str, Any]:
        return self.model_dump()


class MetricCall(NamedTuple):
    """One metric of an evaluator with its getters and options."""

    func: str
    result: Getter | None
    expected: Getter | None
    options: dict[str, Any]


class Evaluator(_Open):
    """`func` is one metric or a list; with a list, `result`, `expected` and `options` are parallel
    lists and `conj` ("and": mean, 0 if any is 0; "or": max) combines the scores."""

    func: str | list[str]
    conj: Literal["and", "or"] = "and"
    result: Getter | list[Getter | None] | None = None
    expected: Getter | list[Getter | None] | None = None
    options: dict[str, Any] | list[dict[str, Any] | None] | None = None

    @model_validator(mode="after")
    def _parallel(self) -> Evaluator:
        if isinstance(self.func, list):
            if not self.func:
                raise ValueError("func is an empty list")
            for name in ("result", "expected", "options"):
                value = getattr(self, name)
                if value is not None and (not isinstance(value, list) or len(value) != len(self.func)):
                    raise ValueError(f"{name} must be a list of {len(self.func)}, one per func")
        else:
            for name in ("result", "expected", "options"):
                if isinstance(getattr(self, name), list):
                    raise ValueError(f"{name} is a list but func is a single metric")
        return self

    def calls(self) -> list[MetricCall]:
        if isinstance(self.func, str):
            return [MetricCall(self.func, self.result, self.expected, self.options or {})]
        n = len(self.func)
        results, expecteds, options = (value or [None] * n
                                        for value in (self.result, self.expected, self.options))
        return [MetricCall(f, r, e, o or {}) for f, r, e, o in zip(self.func, results, expecteds, options)]
