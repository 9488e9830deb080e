"""The scripted expert in the three roles (`cua.collect.roles` protocols), speaking the agent
format like a model would; it reads the file, never the screen, to propose and judge."""

from __future__ import annotations

import random
from collections.abc import Iterable

from cua.actions import Finished, Hotkey
from cua.collect.expert import families
from cua.collect.expert.base import ExpertStep, Family
from cua.collect.roles import Grounding, Observation, Proposal, Put
from cua.formats import AgentFormat, Context
from cua.records import Task, Verdict

KEEP_FORMAT_DIALOG = "Confirm File Format"


class ScriptedGoalGenerator:
    """Proposes instances of the families that fit the env's apps and the file's kind (only
    of the named `families`, when given)."""

    def __init__(self, seed: int = 0, families: Iterable[str] = ()):
        self.seed = seed
        self.families = frozenset(families)

    def propose(self, grounding: Grounding, n: int, put: Put | None = None) -> Proposal:
        rng = random.Random(f"{self.seed}-{grounding.id}")
        kind, path = grounding.kind, grounding.path
        apps = {a.app for a in grounding.env.apps if kind in a.content}
        fitting = [f for f in families().values() if f.app in apps and kind in f.kinds
                   and (not self.families or f.name in self.families)]
        rng.shuffle(fitting)
        tasks: list[Task] = []
        for family in fitting:
            task = family.propose(path, rng)
            if task is not None:
                tasks.append(task.model_copy(update={"id": f"{grounding.id}-{len(tasks)}",
                                                     "content": path.name}))
            if len(tasks) == n:
                break
        return Proposal(tasks)


class ScriptedJudge:
    def judge(self, task: Task, grounding: Grounding, screenshot: bytes | None = None,
              put: Put | None = None) -> tuple[Verdict, None]:
        family = families().get(task.family or "")
        if family is None:
            return Verdict(feasible=False, reason=f"no template family {task.family!r}"), None
        return family.judge(task, grounding.path), None


class ScriptedAgent:
    """Acts out a family's plan, then saves, answers the Keep-format dialog if it shows, and
    declares the task finished — each step's response written in the agent format."""

    name = "scripted"

    def __init__(self, agent_format: AgentFormat):
        self.format = agent_format
        self.plan: list[ExpertStep] = []
        self.family: Family | None = None

    def start(self, task: Task) -> None:
        family = families().get(task.family or "")
        if family is None:
            raise ValueError(f"the scripted expert has no plan for task {task.id!r} "
                             f"(family {task.family!r})")
        self.family = family
        self.plan = list(family.plan(task)) + [ExpertStep(
            thought="The change is made. I save the file with ctrl+s so it keeps its format.",
            actions=[Hotkey(keys=["ctrl", "s"])])]

    def act(self, context: Context, observation: Observation, put: Put | None = None,
            attempt: int = 0) -> tuple[str, None]:
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
