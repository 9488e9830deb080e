"""The work of one desktop in a collect run: propose tasks for a content file, run an episode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cua.collect.agents import RoleFactory
from cua.collect.episode import EpisodeSpec, OpsHarness, run_episode
from cua.collect.expert import families
from cua.collect.expert.base import save_ops
from cua.collect.recipe import CollectRecipe
from cua.collect.roles import Grounding
from cua.collect.standby import WorkerDesktop
from cua.collect.store import ScreenBuffer
from cua.desktop.ops import OpenFile, Upload
from cua.envspec import EnvSpec
from cua.formats import get_format
from cua.records import ContentRef, EpisodeRecord, GoalRecord, Task


@dataclass
class GoalUnit:
    """One content file on one env: the goal generator proposes tasks for it."""

    id: str
    env: EnvSpec
    content: ContentRef
    path: str


@dataclass
class EpisodeUnit:
    goal: GoalUnit
    task: Task


def episode_spec(unit: EpisodeUnit) -> EpisodeSpec:
    """The episode of a proposed task: the file uploaded and opened; saved and scored by its
    family's evaluator as in `cua eval` (a model's own proposals have none: unverified)."""
    name, task = unit.goal.content.name, unit.task
    family = families().get(task.family or "")
    harness = OpsHarness(
        [Upload(Path(unit.goal.path), name), OpenFile(name)],
        postconfig=save_ops(name) if family else [],
        evaluator=family.evaluator(task, f"/home/user/{name}") if family else None)
    return EpisodeSpec(task=task, env=unit.goal.env, content=unit.goal.content,
                       group=unit.goal.id, harness=harness)


# -- the work of one desktop ---------------------------------------------------------------------

class Worker:
    """Owns one desktop and an agent; turns units into records (and their screenshots)."""

    def __init__(self, recipe: CollectRecipe, roles: RoleFactory | None = None):
        self.recipe = recipe
        roles = roles or RoleFactory(map(recipe.role_model, ("goal", "judge", "executor")))
        self.goal_generator = roles.goal_generator(recipe.role_model("goal"), recipe.seed,
                                                   recipe.families)
        self.judge = roles.judge(recipe.role_model("judge"))
        self.format = get_format(recipe.agent_format, **recipe.agent_format_options)
        self.agent = roles.agent(recipe.role_model("executor"), self.format)
        self.desktops = WorkerDesktop(recipe.backend, recipe.standby)

    def close(self) -> None:
        self.desktops.close()

    def _grounding(self, unit: GoalUnit, screens: ScreenBuffer, on_screen=None) -> Grounding:
        def screenshot() -> bytes:
            desktop = self.desktops.for_env(unit.env)
            desktop.reset(unit.env, [Path(unit.path)])
            png = desktop.screenshot_png()
            if on_screen is not None:
                on_screen(screens.put(png))
            return png
        return Grounding(unit.id, unit.env, Path(unit.path), unit.content.kind, screenshot)

    def goal(self, unit: GoalUnit) -> tuple[GoalRecord, dict[str, bytes]]:
        screens = ScreenBuffer()
        record = GoalRecord(id=unit.id, env=unit.env.name, content=unit.content)
        grounding = self._grounding(unit, screens,
                                    lambda digest: setattr(record, "screenshot", digest))
        try:
            proposal = self.goal_generator.propose(grounding, self.recipe.tasks_per_content,
                                                   screens.put)
            record.tasks, record.call, record.error = proposal.tasks, proposal.call, proposal.error
        except Exception as exc:  # recorded, never fatal to the run
            record.error = f"{type(exc).__name__}: {exc}"
            self.desktops.drop()  # a fresh desktop for the next unit
        return record, screens.screens

    def episode(self, unit: EpisodeUnit, files: Path, upcoming: EpisodeUnit | None = None
                ) -> tuple[EpisodeRecord, dict[str, bytes]]:
        """Run an episode; with a standby desktop, `upcoming`'s is set up meanwhile."""
        grounding = self._grounding(unit.goal, ScreenBuffer())
        spec = episode_spec(unit)
        prepared = self.desktops.turn(unit.task.id, spec, upcoming and (
            upcoming.task.id, episode_spec(upcoming)))
        record, screens = run_episode(
            self.desktops.desktop, spec, self.agent, self.format, self.recipe, files,
            judge=lambda png, put: self.judge.judge(unit.task, grounding, png, put),
            prepared=prepared)
        if record.outcome == "error":
            self.desktops.drop()  # a fresh desktop for the next episode
        return record, screens

    def run(self, kind: str, unit, root: Path, upcoming=None):
        """A goal or an episode unit; an episode's scored files go under `root/checked/ID`."""
        if kind == "goal":
            return self.goal(unit)
        return self.episode(unit, root / "checked" / unit.task.id, upcoming)
