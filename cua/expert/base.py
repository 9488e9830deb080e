"""Template task families of the scripted expert: propose, judge, plan and check one kind of task."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from cua.actions import Action
from cua.tasks import CheckResult, Task, Verdict


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
    def check(self, task: Task, saved: Path) -> CheckResult:
        """Read the saved file and say whether the task was done."""
