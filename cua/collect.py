"""`cua collect`: plan a run, propose and judge tasks, roll them out on desktops, store it all."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from cua.actions import Hotkey
from cua.config import CollectRecipe
from cua.content import ContentError, check_content
from cua.desktop import registry
from cua.envspec import EnvSpec, load_env
from cua.expert.scripted import (KEEP_FORMAT_DIALOG, ScriptedExecutor, ScriptedGoalGenerator,
                                 ScriptedJudge)
from cua.formats import get_format
from cua.models import ChatModel
from cua.pool import run_pool
from cua.records import ContentRef, EpisodeRecord, GoalRecord, RunManifest
from cua.roles import ModelExecutor, ModelGoalGenerator, ModelJudge
from cua.rollout import rollout
from cua.samples import make_document, make_presentation, make_workbook
from cua.store import RunStore, ScreenBuffer
from cua.summary import summarize
from cua.tasks import Task

GENERATORS = {"workbooks": (make_workbook, "sales-{}.xlsx"),
              "presentations": (make_presentation, "review-{}.pptx"),
              "documents": (make_document, "memo-{}.docx")}


@dataclass
class GoalUnit:
    id: str
    env: EnvSpec
    content: ContentRef
    path: str


@dataclass
class EpisodeUnit:
    goal: GoalUnit
    task: Task


# -- planning --------------------------------------------------------------------------------------

def new_run(recipe: CollectRecipe) -> RunStore:
    """Create the run folder: content copied in and checked, envs resolved, manifest written."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    store = RunStore(recipe.out.expanduser() / f"{recipe.name}-{stamp}")
    folder = store.root / "content"
    folder.mkdir(parents=True)
    for source in _content_sources(recipe, folder):
        if source.parent != folder:
            (folder / source.name).write_bytes(source.read_bytes())
    refs, rejected = [], {}
    for path in sorted(folder.iterdir()):
        try:
            info = check_content(path)
            refs.append(ContentRef(name=path.name, kind=info.kind, sha256=info.sha256))
        except ContentError as exc:
            rejected[path.name] = exc.reason
    envs = {name: load_env(name) for name in recipe.envs}
    store.create(RunManifest(run_id=store.root.name, created=time.time(),
                             recipe=recipe.model_dump(mode="json"), versions=package_versions(),
                             envs={e.name: e for e in envs.values()}, content=refs,
                             rejected_content=rejected))
    return store


def _content_sources(recipe: CollectRecipe, folder: Path) -> list[Path]:
    source = recipe.content
    if source.generate:
        options = dict(source.generate)
        seed = options.pop("seed", recipe.seed)
        made = []
        for key, count in options.items():
            if key not in GENERATORS:
                raise ValueError(f"content.generate: unknown kind {key!r} ({', '.join(GENERATORS)})")
            make, pattern = GENERATORS[key]
            made += [make(folder / pattern.format(i + 1), seed=seed + i) for i in range(count)]
        return made
    if source.folder:
        root = source.folder.expanduser()
        if not root.is_dir():
            raise ValueError(f"content folder {root} does not exist")
        return sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    return [p.expanduser() for p in source.files]


def package_versions() -> dict[str, str]:
    found = {"cua": version("cua"), "python": platform.python_version()}
    for package in ("openai", "pydantic", "openpyxl", "python-pptx", "python-docx"):
        found[package] = version(package)
    return found


def goal_units(store: RunStore) -> list[GoalUnit]:
    manifest = store.manifest()
    units = []
    for ref in manifest.content:
        for env in manifest.envs.values():
            if any(ref.kind in app.content for app in env.apps):
                units.append(GoalUnit(id=f"{env.name}-{ref.sha256[:10]}", env=env, content=ref,
                                      path=str(store.root / "content" / ref.name)))
    return units


# -- the work of one desktop -----------------------------------------------------------------------

class Worker:
    """Owns one desktop and the roles; turns units into records (and their screenshots)."""

    def __init__(self, recipe: CollectRecipe):
        self.recipe = recipe
        self.format = get_format(recipe.agent_format, **recipe.agent_format_options)
        self.desktop = None
        models = {role: recipe.role_model(role) for role in ("goal", "judge", "executor")}
        self.scripted = {role: m.scripted for role, m in models.items()}
        chat = {role: ChatModel(m) for role, m in models.items() if not m.scripted}
        self.goal_generator = (ScriptedGoalGenerator(recipe.seed, recipe.families)
                               if self.scripted["goal"]
                               else ModelGoalGenerator(chat["goal"]))
        self.judge = ScriptedJudge() if self.scripted["judge"] else ModelJudge(chat["judge"])
        self.executor = (ScriptedExecutor(self.format) if self.scripted["executor"]
                         else ModelExecutor(chat["executor"], self.format))

    def close(self) -> None:
        if self.desktop is not None:
            self.desktop.close()
            self.desktop = None

    def _ready(self, unit: GoalUnit) -> bytes:
        """Reset a (new, if needed) desktop with the unit's content; returns its screenshot."""
        if self.desktop is None:
            self.desktop = registry.backend(self.recipe.backend).start()
        self.desktop.reset(unit.env, [Path(unit.path)])
        return self.desktop.screenshot_png()

    def goal(self, unit: GoalUnit) -> tuple[GoalRecord, dict[str, bytes]]:
        screens = ScreenBuffer()
        record = GoalRecord(id=unit.id, env=unit.env.name, content=unit.content)
        n, path = self.recipe.tasks_per_content, Path(unit.path)
        try:
            if self.scripted["goal"]:
                record.tasks = self.goal_generator.propose(unit.id, unit.env, path,
                                                           unit.content.kind, n)
            else:
                png = self._ready(unit)
                record.screenshot = screens.put(png)
                record.tasks, record.call, record.error = self.goal_generator.propose(
                    unit.id, unit.env, summarize(path), png, n, screens.put)
        except Exception as exc:  # recorded, never fatal to the run
            record.error = f"{type(exc).__name__}: {exc}"
            self.close()
        return record, screens.screens

    def episode(self, unit: EpisodeUnit) -> tuple[EpisodeRecord, dict[str, bytes]]:
        screens, task, started = ScreenBuffer(), unit.task, time.time()
        record = EpisodeRecord(id=task.id, goal_id=unit.goal.id, env=unit.goal.env,
                               content=unit.goal.content, task=task, outcome="error",
                               model=self.recipe.role_model("executor").name,
                               agent_format=self.format.name,
                               agent_format_options=self.recipe.agent_format_options,
                               started=started)
        try:
            png = self._ready(unit.goal)
            record.judge_screenshot = screens.put(png)
            path = Path(unit.goal.path)
            if self.scripted["judge"]:
                record.verdict = self.judge.judge(task, path)
            else:
                record.verdict, record.judge_call = self.judge.judge(
                    task, unit.goal.env, summarize(path), png, screens.put)
            if not record.verdict.feasible:
                record.outcome = "infeasible"
            else:
                record.steps, record.terminated, record.truncated = rollout(
                    self.desktop, task, self.executor, self.format, screens,
                    self.recipe.max_steps, self.recipe.parse_error_budget)
                health = self.desktop.health()
                if not health.ok:
                    down = [app for app, up in health.apps.items() if not up] or ["X server"]
                    raise RuntimeError(f"{', '.join(down)} died during the episode")
                record.check, record.outcome = self._check(task, path)
        except Exception as exc:  # a crashed app, a dead desktop: recorded with its reason
            record.error = f"{type(exc).__name__}: {exc}"
            record.outcome = "error"
            self.close()
        record.seconds = time.time() - started
        return record, screens.screens

    def _check(self, task: Task, original: Path):
        """Save the document (OSWorld's postconfig), read it back and run the family's check."""
        from cua.expert import families

        saved = save_and_fetch(self.desktop, task.content)
        family = families().get(task.family or "")
        if family is None:
            return None, "unverified"
        target = original.parent.parent / "checked" / f"{task.id}{original.suffix}"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(saved)
        check = family.check(task, target)
        return check, "success" if check.passed else "failure"


def save_and_fetch(desktop, name: str) -> bytes:
    """ctrl+s on the document's window (keeping its format), then its bytes once written."""
    window = next((w for w in desktop.windows() if w.title.startswith(name)), None)
    if window is not None:
        desktop.activate(window.id)
        desktop.execute([Hotkey(keys=["ctrl", "s"])])
        if any(w.title == KEEP_FORMAT_DIALOG for w in desktop.windows()):
            desktop.execute([Hotkey(keys=["enter"])])
    return desktop.download_settled(name)


# -- running units on a pool of desktops -----------------------------------------------------------

def run_units(recipe: CollectRecipe, kind: str, units: list, on_result) -> None:
    """Run `kind` ("goal" or "episode") units on `recipe.workers` local desktops, or on Ray
    actors when `recipe.ray` is set; `on_result(record, screens)` runs in this thread."""
    if not units:
        return
    if recipe.ray is not None:
        from cua.scale import run_on_ray
        return run_on_ray(recipe, kind, units, on_result)
    run_pool(lambda: Worker(recipe), units, recipe.workers,
             lambda worker, unit: getattr(worker, kind)(unit), lambda result: on_result(*result))


# -- the driver ------------------------------------------------------------------------------------

OUTCOMES = ("success", "failure", "unverified", "infeasible", "error")


def collect(store: RunStore, recipe: CollectRecipe, console=None) -> dict[str, int]:
    """Propose goals, then run every planned episode not yet recorded (so a resumed run
    finishes its plan with each episode exactly once). Returns the outcome counts."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    console = console or Console()
    units = goal_units(store)
    known = store.goals()
    pending = [u for u in units if u.id not in known]
    with console.status(f"proposing tasks for {len(pending)} content × env pairs…"):
        def keep_goal(record: GoalRecord, screens: dict[str, bytes]) -> None:
            _persist(store, screens)
            store.write_goal(record)
        run_units(recipe, "goal", pending, keep_goal)
    goals = store.goals()
    by_id = {u.id: u for u in units}
    episodes = [EpisodeUnit(by_id[g.id], t) for g in goals.values() if g.id in by_id
                for t in g.tasks]
    done = store.episode_ids()
    todo = [e for e in episodes if e.task.id not in done]
    counts = {k: 0 for k in OUTCOMES}
    for record in store.episodes().values():
        counts[record.outcome] += 1
    columns = [TextColumn("[bold]episodes"), BarColumn(), MofNCompleteColumn(),
               TextColumn("accepted {task.fields[accepted]} · rejected {task.fields[rejected]} · "
                          "[green]succeeded {task.fields[success]}[/green] · "
                          "[red]failed {task.fields[failed]}[/red] · {task.fields[rate]}"),
               TimeElapsedColumn()]
    started = time.monotonic()
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("collect", total=len(episodes), completed=len(episodes) - len(todo),
                                **_fields(counts, 0, started))
        finished_now = 0

        def keep_episode(record: EpisodeRecord, screens: dict[str, bytes]) -> None:
            nonlocal finished_now
            _persist(store, screens)
            store.write_episode(record)
            counts[record.outcome] += 1
            finished_now += 1
            progress.update(bar, advance=1, **_fields(counts, finished_now, started))

        run_units(recipe, "episode", todo, keep_episode)
    return counts


def _fields(counts: dict[str, int], finished: int, started: float) -> dict[str, object]:
    hours = max(time.monotonic() - started, 1e-9) / 3600
    return {"accepted": sum(counts[k] for k in ("success", "failure", "unverified")),
            "rejected": counts["infeasible"], "success": counts["success"],
            "failed": counts["failure"] + counts["error"],
            "rate": f"{finished / hours:.0f} episodes/h" if finished else "…"}


def _persist(store: RunStore, screens: dict[str, bytes]) -> None:
    for png in screens.values():
        store.put_screen(png)
