"""Tasks and what the roles say about them: proposals, judge verdicts, checker results."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Task(BaseModel):
    """A task grounded in one content file on a desktop of one env."""

    id: str
    instruction: str
    app: str                      # the app the task is done in (calc, impress, writer, …)
    content: str                  # the content file's name in the desktop's home
    family: str | None = None     # template family (scripted expert); None when a model proposed it
    params: dict[str, Any] = Field(default_factory=dict)  # the family's parameters


class Verdict(BaseModel):
    """The precondition judge's answer: is this task feasible on this desktop and content?"""

    feasible: bool
    reason: str


class CheckResult(BaseModel):
    """A family checker's reading of the saved file."""

    passed: bool
    detail: str
