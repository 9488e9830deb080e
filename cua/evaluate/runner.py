"""`cua eval`: OSWorld-style task configs run by an agent on live desktops, then scored.

One attempt = reset the desktop into the task's initial state (setup steps), let the agent act
(the UI-TARS formats against an endpoint, or the scripted expert playing the task's reference
solution), run the postconfig steps (save the document), score with the task's evaluator. Results
go in OSWorld's layout `{out}/{agent_format}/{observation}/{model}/{domain}/{id}/` (`traj.jsonl`,
step screenshots, `result.txt`), whose model folder is also a cua run store, so `cua view` and
`cua expand` read evaluation episodes like collected ones. A task with a `result.txt` is done: running
the same command again resumes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cua.actions import to_call
from cua.desktop import registry
from cua.evaluate.evaluator import EvalResult, evaluate
from cua.evaluate.setup import Upload, home_path, prepare, run_ops
from cua.evaluate.taskconfig import TaskConfig, load_tasks
from cua.expert.scripted import ScriptedExecutor
from cua.envspec import EnvSpec
from cua.formats import get_format
from cua.models import ChatModel, ModelConfig
from cua.pool import run_pool
from cua.records import ContentRef, EpisodeRecord, RunManifest
from cua.roles import ModelExecutor
from cua.rollout import rollout
from cua.store import RunStore, ScreenBuffer, write_atomic
from cua.tasks import CheckResult, Task


class EvalRecipe(BaseModel):
    """What to evaluate, with which agent, on which desktops. `model.name: scripted` plays each
    task's reference solution with the scripted expert."""

    model_config = ConfigDict(extra="forbid")

    name: str = "eval"
    tasks: list[Path] = Field(min_length=1)       # task files or folders of them
    domains: list[str] = []                        # empty: every domain
    out: Path = Path("results")
    model: ModelConfig = ModelConfig()
    agent_format: str = "uitars-1.5"
    agent_format_options: dict[str, Any] = {}      # min_pixels, max_pixels, history_n, …
    observation: Literal["screenshot"] = "screenshot"
    max_steps: int = Field(15, ge=1)
    parse_error_budget: int = Field(3, ge=1)
    workers: int = Field(1, ge=1)
    backend: str = "local"

    def results_root(self) -> Path:
        model = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model.name.strip("/"))
        return self.out.expanduser() / self.agent_format / self.observation / model


def select_tasks(recipe: EvalRecipe) -> tuple[list[TaskConfig], dict[str, str]]:
    """The supported tasks of the recipe's domains, and the others with the reason."""
    tasks, unsupported = load_tasks(recipe.tasks)
    if recipe.domains:
        tasks = [t for t in tasks if t.domain in recipe.domains]
    if recipe.model.scripted:
        for task in [t for t in tasks if t.solution is None]:
            unsupported[task.id] = "the scripted expert needs a reference solution (no 'solution')"
        tasks = [t for t in tasks if t.solution is not None]
    return tasks, unsupported


# -- one attempt on one desktop ----------------------------------------------------------------------


@dataclass
class Attempt:
    """What one run of a task produced (written out by the caller's thread)."""

    task: TaskConfig
    record: EpisodeRecord
    screens: dict[str, bytes]
    final_screen: bytes | None = None
    result: EvalResult | None = None
    log: list[str] = field(default_factory=list)


def content_ref(task: TaskConfig) -> ContentRef:
    """The task's first uploaded file, as the run's records name content."""
    upload = next((op for op in task.setup_ops() if isinstance(op, Upload)), None)
    if upload is None:
        return ContentRef(name="", kind="", sha256="")
    return ContentRef(name=upload.remote, kind=upload.source.suffix.lstrip(".").lower(),
                      sha256=hashlib.sha256(upload.source.read_bytes()).hexdigest())


def as_task(task: TaskConfig, env: EnvSpec, content: ContentRef) -> Task:
    solution = task.solution
    return Task(id=task.id, instruction=task.instruction, app=env.apps[0].app,
                content=content.name, family=solution.family if solution else None,
                params=solution.params if solution else {})


class EvalWorker:
    """Owns one desktop and one agent; runs attempts one after another."""

    def __init__(self, recipe: EvalRecipe):
        self.recipe = recipe
        self.format = get_format(recipe.agent_format, **recipe.agent_format_options)
        self.agent = (ScriptedExecutor(self.format) if recipe.model.scripted
                      else ModelExecutor(ChatModel(recipe.model), self.format))
        self.desktop = None

    def close(self) -> None:
        if self.desktop is not None:
            self.desktop.close()
            self.desktop = None

    def attempt(self, task: TaskConfig, files: Path, act: bool = True) -> Attempt:
        """Set up, let the agent act (unless `act` is False: the initial state), save, score.
        Files the evaluator reads are kept in `files`."""
        started = time.time()
        env = task.env()
        content = content_ref(task)
        record = EpisodeRecord(id=task.id, goal_id=task.domain, env=env, content=content,
                               task=as_task(task, env, content), model=self.recipe.model.name,
                               agent_format=self.format.name,
                               agent_format_options=self.recipe.agent_format_options,
                               outcome="error", started=started)
        screens = ScreenBuffer()
        attempt = Attempt(task, record, screens.screens)
        try:
            if self.desktop is None:
                self.desktop = registry.backend(self.recipe.backend).start()
            attempt.log += prepare(self.desktop, env, task.setup_ops())
            if act:
                record.steps, record.terminated, record.truncated = rollout(
                    self.desktop, record.task, self.agent, self.format, screens,
                    self.recipe.max_steps, self.recipe.parse_error_budget)
                if (record.truncated or "").startswith("model_error"):
                    raise RuntimeError(f"the agent's endpoint failed: {record.truncated}")
            attempt.final_screen = self.desktop.screenshot_png()
            health = self.desktop.health()
            if not health.ok:
                down = [app for app, up in health.apps.items() if not up] or ["X server"]
                raise RuntimeError(f"{', '.join(down)} died during the episode")
            attempt.log += run_ops(self.desktop, task.postconfig_ops())
            desktop = self.desktop
            attempt.result = evaluate(task.evaluator,
                                      lambda path: desktop.download_settled(home_path(path)),
                                      task.task_dir, files)
            passed = attempt.result.score >= 1
            record.check = CheckResult(passed=passed, detail=describe(attempt.result))
            record.outcome = "success" if passed else "failure"
        except Exception as exc:  # a crashed app, a dead desktop, a corrupt file: recorded
            record.error = f"{type(exc).__name__}: {exc}"
            self.close()
        record.seconds = time.time() - started
        return attempt


def describe(result: EvalResult) -> str:
    parts = [f"score {result.score:g}"]
    parts += [f"{d.func}: {d.error or d.reason or d.score}" for d in result.details]
    return "; ".join(parts)


# -- results -----------------------------------------------------------------------------------------


def task_dir(root: Path, task: TaskConfig) -> Path:
    return root / task.domain / task.id


def write_attempt(store: RunStore, attempt: Attempt) -> None:
    """OSWorld's per-task files plus the episode record and its screenshots in the store."""
    for png in attempt.screens.values():
        store.put_screen(png)
    store.write_episode(attempt.record)
    folder = task_dir(store.root, attempt.task)
    folder.mkdir(parents=True, exist_ok=True)
    steps = attempt.record.steps
    # OSWorld saves the screen after each action: the next step's observation, then the final one.
    after = [store.screen(s.screenshot) for s in steps[1:]] + [attempt.final_screen]
    lines = []
    for n, (step, png) in enumerate(zip(steps, after), start=1):
        stamp = datetime.fromtimestamp(attempt.record.started + sum(
            sum(s.seconds.values()) for s in steps[:n]), timezone.utc).strftime("%Y%m%d@%H%M%S")
        shot = f"step_{n}_{stamp}.png"
        if png is not None:
            write_atomic(folder / shot, png)
        lines.append(json.dumps({
            "step_num": n, "action_timestamp": stamp, "response": step.response,
            "action": [to_call(a) for a in step.actions], "parse_error": step.parse_error,
            "done": n == len(steps) and attempt.record.terminated, "screenshot_file": shot}))
    write_atomic(folder / "traj.jsonl", "".join(line + "\n" for line in lines).encode())
    report = {"outcome": attempt.record.outcome, "error": attempt.record.error,
              "truncated": attempt.record.truncated, "setup": attempt.log,
              "evaluation": attempt.result.model_dump() if attempt.result else None}
    write_atomic(folder / "eval.json", json.dumps(report, indent=1).encode())
    result = folder / "result.txt"
    if attempt.result is not None and attempt.record.error is None:
        write_atomic(result, f"{attempt.result.score}\n".encode())
    elif result.exists():
        result.unlink()


def done_ids(root: Path, tasks: list[TaskConfig]) -> set[str]:
    return {t.id for t in tasks if (task_dir(root, t) / "result.txt").is_file()}


class DomainRow(BaseModel):
    domain: str
    tasks: int
    done: int
    success_rate: float     # mean score over the domain's tasks (an unfinished task scores 0)
    avg_steps: float
    avg_seconds: float
    errors: int


def summarize(store: RunStore, tasks: list[TaskConfig]) -> list[DomainRow]:
    """A row per domain and a last row for all of them."""
    episodes = store.episodes()
    rows = []
    groups = sorted({t.domain for t in tasks})
    for domain in [*groups, "all"]:
        mine = [t for t in tasks if domain in ("all", t.domain)]
        scores, steps, seconds, errors = [], [], [], 0
        for task in mine:
            result = task_dir(store.root, task) / "result.txt"
            episode = episodes.get(task.id)
            if result.is_file():
                scores.append(float(result.read_text()))
                steps.append(len(episode.steps) if episode else 0)
                seconds.append(episode.seconds if episode else 0.0)
            elif episode is not None and episode.outcome == "error":
                errors += 1
        rows.append(DomainRow(domain=domain, tasks=len(mine), done=len(scores),
                              success_rate=sum(scores) / len(mine) if mine else 0.0,
                              avg_steps=_mean(steps), avg_seconds=_mean(seconds), errors=errors))
    return rows


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# -- the driver --------------------------------------------------------------------------------------


def open_results(recipe: EvalRecipe, tasks: list[TaskConfig]) -> RunStore:
    """The results folder of this agent, created on the first run and reused to resume."""
    from cua.collect import package_versions

    store = RunStore(recipe.results_root())
    if not (store.root / "manifest.json").exists():
        envs = {}
        for task in tasks:
            env = task.env()
            envs[env.name] = env
        contents = {ref.sha256: ref for ref in map(content_ref, tasks) if ref.sha256}
        store.create(RunManifest(run_id=f"{recipe.name}-{store.root.name}", created=time.time(),
                                 recipe=recipe.model_dump(mode="json"),
                                 versions=package_versions(), envs=envs,
                                 content=list(contents.values())))
    return store


def run_eval(recipe: EvalRecipe, tasks: list[TaskConfig], console=None) -> tuple[RunStore,
                                                                                  list[DomainRow]]:
    """Run every task without a result yet; returns the store and the per-domain summary."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console()
    store = open_results(recipe, tasks)
    finished = done_ids(store.root, tasks)
    todo = [t for t in tasks if t.id not in finished]
    passed = sum(1 for e in store.episodes().values() if e.outcome == "success" and e.id in finished)
    columns = [TextColumn("[bold]tasks"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[green]passed {task.fields[passed]}[/green] · {task.fields[last]}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("eval", total=len(tasks), completed=len(finished), passed=passed,
                                last="")

        def keep(attempt: Attempt) -> None:
            nonlocal passed
            write_attempt(store, attempt)
            passed += attempt.record.outcome == "success"
            progress.update(bar, advance=1, passed=passed,
                            last=f"{attempt.task.id}: {attempt.record.outcome}")

        def work(worker: EvalWorker, task: TaskConfig) -> Attempt:
            files = task_dir(store.root, task) / "files"
            shutil.rmtree(files, ignore_errors=True)
            return worker.attempt(task, files=files)

        run_pool(lambda: EvalWorker(recipe), todo, recipe.workers, work, keep)
    rows = summarize(store, tasks)
    write_atomic(store.root / "summary.json",
                 json.dumps([r.model_dump() for r in rows], indent=1).encode())
    return store, rows
