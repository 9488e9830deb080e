"""Template task families of the scripted expert: propose, judge, plan and score one kind of
task."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import BaseModel

from cua.actions import Action, Hotkey
from cua.desktop.ops import Act, ActivateWindow, Op, Sleep
from cua.records import Task, Verdict


class ExpertStep(BaseModel):
    """One step of a plan: what an agent would think, and the canonical actions it takes."""

    thought: str
    actions: list[Action]


class Family(ABC):
    """One template family over real content. Plans are keyboard-centred and open-loop: they
    start on the freshly opened document and stop before saving (the expert's driver saves and
    answers the "Keep current format" dialog when it appears)."""

    name: ClassVar[str]           # e.g. "calc.sum_column"
    app: ClassVar[str]            # calc, impress or writer
    kinds: ClassVar[tuple[str, ...]]  # content kinds it works on, e.g. ("xlsx",)

    @abstractmethod
    def propose(self, path: Path, rng: random.Random) -> Task | None:
        """A task instance grounded in this file, or None when the file offers no target."""

    @abstractmethod
    def judge(self, task: Task, path: Path) -> Verdict:
        """Whether the task's preconditions hold in this file (before any rollout)."""

    @abstractmethod
    def plan(self, task: Task) -> list[ExpertStep]:
        """The steps that do the task, on a 1920x1080 screen, before saving."""

    @abstractmethod
    def evaluator(self, task: Task, remote: str) -> dict:
        """The task's OSWorld evaluator (func, conj, result, expected, options; the caller adds the
        postconfig that saves): rules built from the task's params that score the document at
        `remote` on the desktop without a gold file. It alone decides whether the task was done,
        in collection as in eval."""


def feasible(reason: str = "the target is still there and untouched") -> Verdict:
    return Verdict(feasible=True, reason=reason)


def infeasible(reason: str) -> Verdict:
    return Verdict(feasible=False, reason=reason)


def result_file(remote: str) -> dict[str, Any]:
    """The `vm_file` getter of the document at `remote` on the desktop, cached under its name."""
    return {"type": "vm_file", "path": remote, "dest": PurePosixPath(remote).name}


def rule_evaluator(func: str, remote: str, rules: dict[str, Any]) -> dict[str, Any]:
    """An evaluator scoring the document at `remote` with the rule metric `func` (check_slides,
    check_paragraphs) against `rules`."""
    return {"func": func, "result": result_file(remote),
            "expected": {"type": "rule", "rules": rules}}


def save_ops(name: str) -> list[Op]:
    """OSWorld's save-before-reading postconfig of the document `name` as desktop operations:
    activate its window, ctrl+s, Enter for the Keep-format dialog (the steps `cua eval make`
    writes into task files)."""
    return [ActivateWindow(name), Act((Hotkey(keys=["ctrl", "s"]),)), Sleep(0.5),
            Act((Hotkey(keys=["enter"]),)), Sleep(0.5)]
