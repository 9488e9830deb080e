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
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, Field, model_validator
from rich.console import Console

from cua.actions import to_call
from cua.collect.agents import RoleFactory
from cua.collect.episode import EpisodeSpec, OpsHarness, run_episode
from cua.collect.pool import run_pool
from cua.collect.progress import EpisodeProgress
from cua.collect.standby import WorkerDesktop
from cua.collect.store import RunStore, package_versions, write_atomic
from cua.desktop.ops import Op, Upload
from cua.desktop.registry import BackendName
from cua.evaluate.osworld import harness as osworld_harness
from cua.evaluate.osworld import scorer_env
from cua.evaluate.osworld.listing import listed_task_files
from cua.evaluate.osworld.scorer import Scorer
from cua.evaluate.osworld.support import Runnable
from cua.evaluate.osworld.support import task_problems as osworld_problems
from cua.evaluate.setup import env_for
from cua.evaluate.taskconfig import TaskConfig, load_tasks, task_problems
from cua.formats import FORMATS, format_class, get_format
from cua.recipes import AgentSettings
from cua.records import ContentRef, EpisodeRecord, RunManifest, Task
from cua.scoring.metrics import CUA_ONLY

OSWORLD_CACHE = Path("~/.cache/cua/osworld")
SCORER_LOG = "scorer.log"  # in the results folder: what desktop-env's code printed


class EvalRecipe(AgentSettings):
    """What to evaluate, with which agent, on which desktops. `model.name: scripted` plays each
    task's reference solution with the scripted expert."""

    name: str = "eval"
    tasks: list[Path] = Field(min_length=1)       # task files or folders of them
    domains: list[str] = []                        # empty: every domain
    out: Path = Path("results")
    observation: Literal["screenshot"] = "screenshot"
    workers: int = Field(1, ge=1)
    standby: bool = False                          # a second desktop per worker, set up for its
                                                   # next task while it runs this one
    runs: int = Field(1, ge=1)                     # >1: run k in `out`/run-k, mean ± std reported
    backend: BackendName = "local"
    test_list: Path | None = None                  # OSWorld's test_all.json …: `tasks` is examples/
    cache: Path = OSWORLD_CACHE                    # OSWorld's downloads, fetched once
    allow_host_commands: bool = False              # local backend: run OSWorld's task commands here

    @model_validator(mode="before")
    @classmethod
    def _osworld_profile(cls, data: Any) -> Any:
        """OSWorld's run protocol (a test list) drives the agent as OSWorld's reference run does:
        the format's `osworld` profile, unless the recipe chooses a profile."""
        if not isinstance(data, dict) or not data.get("test_list"):
            return data
        name = data.get("agent_format", "uitars-1.5")
        if name in FORMATS and hasattr(format_class(name), "profile"):
            options = dict(data.get("agent_format_options") or {})
            data = {**data, "agent_format_options": {"profile": "osworld", **options}}
        return data

    def commands(self) -> bool:
        """Whether desktops run the commands OSWorld's steps send (a container is a sandbox)."""
        return self.backend == "docker" or self.allow_host_commands

    def sudo(self) -> bool:
        """Whether OSWorld's steps may run sudo: where the env their desktops start with asks for
        it, in a container only (a local desktop's user is this host's)."""
        return self.backend == "docker" and osworld_harness.task_env().sudo

    def results_root(self) -> Path:
        model = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model.name.strip("/"))
        return self.out.expanduser() / self.agent_format / self.observation / model


def is_osworld(task: TaskConfig) -> bool:
    """A task of OSWorld's own, with none of cua's extensions (a reference solution, shipped gold
    files, cua's own metrics): desktop-env sets it up and scores it. cua's tasks keep cua's steps
    and metrics."""
    return (task.solution is None and not task.gold
            and not any(call.func in CUA_ONLY for call in task.evaluator.calls()))


def problems(task: TaskConfig, recipe: EvalRecipe) -> list[str]:
    """Why `task` cannot run with `recipe` (empty: it can)."""
    if not is_osworld(task):
        return task_problems(task)
    if not scorer_env.installed():
        return ["OSWorld's scorer is not installed: run `cua eval install-scorer`"]
    return osworld_problems(task, recipe.commands(), scorer_env.evaluator_names(),
                            sudo=recipe.sudo())


def _task_paths(recipe: EvalRecipe) -> list[Path]:
    return (listed_task_files(recipe.tasks[0], recipe.test_list, recipe.domains)
            if recipe.test_list else recipe.tasks)


def dry_run(recipe: EvalRecipe) -> dict[str, Runnable]:
    """Per domain of the recipe's tasks: how many run, and why each other one does not."""
    tasks, unreadable = load_tasks(_task_paths(recipe), recipe.domains, lambda task: [])
    report: dict[str, Runnable] = {}
    for task in tasks:
        domain = report.setdefault(task.domain, Runnable(not_runnable={}))
        reasons = problems(task, recipe)
        if reasons:
            domain.not_runnable[task.id] = reasons
        else:
            domain.runnable += 1
    if unreadable:
        report["(unreadable)"] = Runnable(not_runnable={k: [v] for k, v in unreadable.items()})
    return report


def runnable_tasks(recipe: EvalRecipe) -> tuple[list[TaskConfig], dict[str, str]]:
    """The tasks of the recipe's domains (of its test list, if any) that its desktops can run,
    and the others of those domains with the reason."""
    return load_tasks(_task_paths(recipe), recipe.domains, lambda task: problems(task, recipe))


def select_tasks(recipe: EvalRecipe) -> tuple[list[TaskConfig], dict[str, str]]:
    """The runnable tasks that the recipe's agent can attempt, and the others with the reason."""
    tasks, unsupported = runnable_tasks(recipe)
    if recipe.model.scripted:
        for task in [t for t in tasks if t.solution is None]:
            unsupported[task.id] = "the scripted expert needs a reference solution (no 'solution')"
        tasks = [t for t in tasks if t.solution is not None]
    return tasks, unsupported


# -- one attempt on one desktop ------------------------------------------------------------------


@dataclass
class Attempt:
    """What one run of a task produced (written out by the caller's thread)."""

    task: TaskConfig
    record: EpisodeRecord
    screens: dict[str, bytes]


def content_ref(setup: list[Op]) -> ContentRef:
    """The first file a task's setup uploads, as the run's records name content."""
    upload = next((op for op in setup if isinstance(op, Upload)), None)
    if upload is None:
        return ContentRef(name="", kind="", sha256="")
    return ContentRef(name=upload.remote, kind=upload.source.suffix.lstrip(".").lower(),
                      sha256=hashlib.sha256(upload.source.read_bytes()).hexdigest())


def episode_spec(task: TaskConfig, scorer: Scorer | None = None,
                 cache: Path = OSWORLD_CACHE) -> EpisodeSpec:
    """The episode of a task: OSWorld's own set up and scored by desktop-env through `scorer`,
    cua's families with their setup, postconfig and evaluator."""
    if is_osworld(task):
        if scorer is None:
            raise ValueError(f"{task.id} is an OSWorld task: its episode needs a Scorer")
        content = osworld_harness.content_ref(task)
        agent_task = Task(id=task.id, instruction=task.instruction,
                          app=osworld_harness.task_app(task), content=content.name)
        return EpisodeSpec(task=agent_task, env=osworld_harness.task_env(), content=content,
                           group=task.domain, harness=osworld_harness.OSWorldHarness(
                               task, scorer, cache.expanduser()))
    setup, solution = task.setup_ops(), task.solution  # planned once for the env and content
    env, content = env_for(task.related_apps, setup), content_ref(setup)
    agent_task = Task(id=task.id, instruction=task.instruction, app=env.apps[0].app,
                      content=content.name, family=solution.family if solution else None,
                      params=solution.params if solution else {})
    harness = OpsHarness(setup, postconfig=task.postconfig_ops(), evaluator=task.evaluator,
                         task_dir=task.task_dir)
    return EpisodeSpec(task=agent_task, env=env, content=content, group=task.domain,
                       harness=harness)


class EvalWorker:
    """Owns one desktop and one agent; runs attempts one after another. `scorer_log`: the file
    OSWorld's scorer writes its messages to (appended; default: this process's stderr)."""

    def __init__(self, recipe: EvalRecipe, roles: RoleFactory, scorer_log: Path | None = None):
        self.recipe, self.scorer_log = recipe, scorer_log
        self.log: IO | None = None
        self.format = get_format(recipe.agent_format, **recipe.agent_format_options)
        self.agent = roles.agent(recipe.model, self.format)
        self.scorer: Scorer | None = None  # OSWorld's scorer, started for the first OSWorld task
        options = {"allow_commands": True} if (
            recipe.backend == "local" and recipe.allow_host_commands) else {}
        self.desktops = WorkerDesktop(recipe.backend, recipe.standby, **options)

    def close(self) -> None:
        self.desktops.close()
        if self.scorer is not None:
            self.scorer.close()
            self.scorer = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def attempt(self, task: TaskConfig, files: Path, act: bool = True,
                upcoming: TaskConfig | None = None) -> Attempt:
        """Set up, let the agent act (unless `act` is False: the initial state), save, score.
        Files the evaluator reads are kept in `files`. With a standby desktop, `upcoming`'s is
        set up meanwhile."""
        spec = self._spec(task)
        prepared = self.desktops.turn(task.id, spec, upcoming and (
            upcoming.id, self._spec(upcoming)))
        record, screens = run_episode(self.desktops.desktop, spec, self.agent if act else None,
                                      self.format, self.recipe, files, prepared=prepared)
        if record.outcome == "error":
            self.desktops.drop()  # a fresh desktop for the next task
        return Attempt(task, record, screens)

    def _spec(self, task: TaskConfig) -> EpisodeSpec:
        if is_osworld(task) and self.scorer is None:
            if self.scorer_log is not None:
                self.log = self.scorer_log.open("a")
            self.scorer = Scorer(log=self.log)
        return episode_spec(task, self.scorer, self.recipe.cache)


# -- results -------------------------------------------------------------------------------------


def task_dir(root: Path, task: TaskConfig) -> Path:
    return root / task.domain / task.id


def write_attempt(store: RunStore, attempt: Attempt) -> None:
    """OSWorld's per-task files plus the episode record and its screenshots in the store."""
    for png in attempt.screens.values():
        store.put_screen(png)
    store.write_episode(attempt.record)
    folder = task_dir(store.root, attempt.task)
    folder.mkdir(parents=True, exist_ok=True)
    record = attempt.record
    steps = record.steps
    # OSWorld saves the screen after each action: the next step's observation, then the final one.
    final = store.screen(record.final_screenshot) if record.final_screenshot else None
    after = [store.screen(s.screenshot) for s in steps[1:]] + [final]
    lines = []
    for n, (step, png) in enumerate(zip(steps, after), start=1):
        stamp = datetime.fromtimestamp(record.started + sum(
            sum(s.seconds.values()) for s in steps[:n]), timezone.utc).strftime("%Y%m%d@%H%M%S")
        shot = f"step_{n}_{stamp}.png"
        if png is not None:
            write_atomic(folder / shot, png)
        lines.append(json.dumps({
            "step_num": n, "action_timestamp": stamp, "response": step.response,
            "action": [to_call(a) for a in step.actions], "parse_error": step.parse_error,
            "done": n == len(steps) and record.terminated, "screenshot_file": shot}))
    write_atomic(folder / "traj.jsonl", "".join(line + "\n" for line in lines).encode())
    report = {"outcome": record.outcome, "error": record.error, "truncated": record.truncated,
              "setup": record.setup_log,
              "evaluation": record.evaluation.model_dump() if record.evaluation else None}
    write_atomic(folder / "eval.json", json.dumps(report, indent=1).encode())
    result = folder / "result.txt"
    if record.evaluation is not None and record.error is None:
        write_atomic(result, f"{record.evaluation.score}\n".encode())
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
    runs: int = 1
    success_std: float = 0.0  # the success rate's sample standard deviation over the runs


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


# -- the driver ----------------------------------------------------------------------------------


def open_results(recipe: EvalRecipe, tasks: list[TaskConfig]) -> RunStore:
    """The results folder of this agent, created on the first run and reused to resume."""
    store = RunStore(recipe.results_root())
    if not (store.root / "manifest.json").exists():
        envs, contents = {}, {}
        for task in tasks:
            if is_osworld(task):
                env, ref = osworld_harness.task_env(), osworld_harness.content_ref(task)
            else:
                env, ref = task.env(), content_ref(task.setup_ops())
            envs[env.name] = env
            if ref.sha256:
                contents[ref.sha256] = ref
        store.create(RunManifest(run_id=f"{recipe.name}-{store.root.name}", created=time.time(),
                                 recipe=recipe.model_dump(mode="json"),
                                 versions=package_versions(), envs=envs,
                                 content=list(contents.values())))
    return store


def run_eval(recipe: EvalRecipe, tasks: list[TaskConfig], console=None) -> tuple[RunStore,
                                                                                  list[DomainRow]]:
    """Run every task without a result yet; returns the store and the per-domain summary."""
    console = console or Console(stderr=True)
    store = open_results(recipe, tasks)
    finished = done_ids(store.root, tasks)
    todo = [t for t in tasks if t.id not in finished]
    done = [e for e in store.episodes().values() if e.id in finished]
    with EpisodeProgress(console, "tasks", len(tasks), done) as progress:
        def keep(attempt: Attempt) -> None:
            write_attempt(store, attempt)
            progress.add(attempt.record)

        def work(worker: EvalWorker, task: TaskConfig, upcoming: TaskConfig | None) -> Attempt:
            files = task_dir(store.root, task) / "files"
            shutil.rmtree(files, ignore_errors=True)
            return worker.attempt(task, files=files, upcoming=upcoming)

        roles = RoleFactory([recipe.model])
        run_pool(lambda: EvalWorker(recipe, roles, store.root / SCORER_LOG), todo, recipe.workers,
                 work, keep)
    rows = summarize(store, tasks)
    write_atomic(store.root / "summary.json",
                 json.dumps([r.model_dump() for r in rows], indent=1).encode())
    return store, rows


def run_evals(recipe: EvalRecipe, tasks: list[TaskConfig], console=None
              ) -> tuple[list[RunStore], list[DomainRow]]:
    """`recipe.runs` runs of every task (run k in `out`/run-k when there are several, each a
    results folder of its own that resumes), and per domain the mean and spread over the runs."""
    if recipe.runs == 1:
        store, rows = run_eval(recipe, tasks, console)
        return [store], rows
    stores, per_run = [], []
    for run in range(1, recipe.runs + 1):
        store, rows = run_eval(recipe.model_copy(update={"out": recipe.out / f"run-{run}"}),
                               tasks, console)
        stores.append(store)
        per_run.append(rows)
    return stores, combine_runs(per_run)


def combine_runs(per_run: list[list[DomainRow]]) -> list[DomainRow]:
    """One row per domain over several runs' rows: the mean success rate with its sample
    standard deviation (as OSWorld-Verified's tables report), tasks done and errors summed."""
    combined = []
    for rows in zip(*per_run, strict=True):
        rates = [r.success_rate for r in rows]
        combined.append(DomainRow(
            domain=rows[0].domain, tasks=rows[0].tasks, done=sum(r.done for r in rows),
            success_rate=statistics.mean(rates), avg_steps=_mean([r.avg_steps for r in rows]),
            avg_seconds=_mean([r.avg_seconds for r in rows]), errors=sum(r.errors for r in rows),
            runs=len(rows), success_std=statistics.stdev(rates) if len(rows) > 1 else 0.0))
    return combined
