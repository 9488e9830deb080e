"""The scripted expert in the three roles, speaking the agent format like a model would."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from cua.actions import Finished, Hotkey
from cua.envspec import EnvSpec
from cua.expert import families
from cua.expert.base import ExpertStep, Family
from cua.roles import Observation
from cua.tasks import Task, Verdict

KEEP_FORMAT_DIALOG = "Confirm File Format"


class ScriptedGoalGenerator:
    """Proposes instances of the families that fit the env's apps and the file's kind (only
    of the named `families`, when given)."""

    def __init__(self, seed: int = 0, families: Iterable[str] = ()):
        self.seed = seed
        self.families = frozenset(families)

    def propose(self, goal_id: str, env: EnvSpec, path: Path, kind: str, n: int) -> list[Task]:
        rng = random.Random(f"{self.seed}-{goal_id}")
        apps = {a.app for a in env.apps if kind in a.content}
        fitting = [f for f in families().values() if f.app in apps and kind in f.kinds
                   and (not self.families or f.name in self.families)]
        rng.shuffle(fitting)
        tasks: list[Task] = []
        for family in fitting:
            task = family.propose(path, rng)
            if task is not None:
                tasks.append(task.model_copy(update={"id": f"{goal_id}-{len(tasks)}",
                                                     "content": path.name}))
            if len(tasks) == n:
                break
        return tasks


class ScriptedJudge:
    def judge(self, task: Task, path: Path) -> Verdict:
        family = families().get(task.family or "")
        if family is None:
            return Verdict(feasible=False, reason=f"no template family {task.family!r}")
        return family.judge(task, path)


class ScriptedExecutor:
    """Acts out a family's plan, then saves, answers the Keep-format dialog if it shows, and
    declares the task finished — each step's response written in the agent format."""

    def __init__(self, agent_format):
        self.format = agent_format
        self.plan: list[ExpertStep] = []
        self.family: Family | None = None

    def start(self, task: Task) -> None:
        self.family = families()[task.family]
        self.plan = list(self.family.plan(task)) + [ExpertStep(
            thought="The change is made. I save the file with ctrl+s so it keeps its format.",
            actions=[Hotkey(keys=["ctrl", "s"])])]

    def act(self, context, observation: Observation, put=None) -> tuple[str, None]:
        step = self._next(observation)
        return self.format.unparse(step.thought, step.actions, observation.screen), None

    def _next(self, observation: Observation) -> ExpertStep:
        if self.plan:
            return self.plan.pop(0)
        if KEEP_FORMAT_DIALOG in observation.windows:
            return ExpertStep(thought="LibreOffice asks whether to keep the current format. I keep "
                              "it, so the file stays in the format it was given in.",
                              actions=[Hotkey(keys=["enter"])])
        return ExpertStep(thought="The file is saved with the change, so the task is complete.",
                          actions=[Finished(content="Done.")])
