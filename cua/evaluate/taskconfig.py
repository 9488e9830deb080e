"""OSWorld task configs: the JSON schema as pydantic models, and loading a folder of task files.

A task is `{id, instruction, config: [setup steps], related_apps, evaluator: {func, conj, result,
expected, options, postconfig}}`; OSWorld files carry more fields (snapshot, source, trajectory, proxy,
fixed_ip, possibility_of_env_change, …), which are kept as extras. `load_tasks` checks every setup
step, getter and metric against what this package supports and lists each task it cannot run with
the reasons, so a folder of real OSWorld files loads as is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from cua.envspec import EnvSpec
from cua.evaluate.setup import Op, UnsupportedStep, env_for, plan_steps
from cua.scoring.config import Evaluator
from cua.scoring.getters import getter_problem, local_source
from cua.scoring.metrics import metric_problem


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- setup steps ---------------------------------------------------------------------------------


class DownloadFile(_Open):
    url: str    # a path relative to the task file, an absolute path or a file:// URL
    path: str   # where it goes on the desktop


class DownloadParams(_Open):
    files: list[DownloadFile]


class UploadFile(_Open):
    local_path: str  # resolved like DownloadFile.url
    path: str


class UploadParams(_Open):
    files: list[UploadFile]


class OpenParams(_Open):
    path: str


class CommandParams(_Open):
    command: str | list[str]
    shell: bool = False


class SleepParams(_Open):
    seconds: float


class ActivateWindowParams(_Open):
    window_name: str
    strict: bool = False
    by_class: bool = False


STEPS: dict[str, type[BaseModel]] = {
    "download": DownloadParams, "upload_file": UploadParams, "open": OpenParams,
    "launch": CommandParams, "execute": CommandParams, "command": CommandParams,
    "sleep": SleepParams, "activate_window": ActivateWindowParams,
}


class SetupStep(_Open):
    """One setup or postconfig step; `params()` validates its parameters for its type."""

    type: str
    parameters: dict[str, Any] = Field(default_factory=dict)

    def params(self) -> BaseModel:
        if self.type not in STEPS:
            raise UnsupportedStep(f"step type {self.type!r} is not supported")
        return STEPS[self.type].model_validate(self.parameters)


# -- evaluator -----------------------------------------------------------------------------------


class TaskEvaluator(Evaluator):
    """The task's evaluator with the steps that run on the desktop before it scores."""

    postconfig: list[SetupStep] = Field(default_factory=list)


class Solution(_Open):
    """cua extension: the scripted-expert family instance that solves the task (its reference
    solution, which `cua eval check` runs and `cua eval --model scripted` plays)."""

    family: str
    params: dict[str, Any] = Field(default_factory=dict)


class TaskConfig(_Open):
    """One OSWorld task; `task_file` is the JSON file it came from, when loaded from one.

    Two optional cua extensions: `solution` (see Solution) and `gold`, gold results shipped with
    the task as {desktop path the evaluator reads: local file, relative to the task file}.
    """

    id: str
    instruction: str
    snapshot: str | None = None
    source: Any = None
    config: list[SetupStep] = Field(default_factory=list)
    related_apps: list[str] = Field(default_factory=list)
    evaluator: TaskEvaluator
    solution: Solution | None = None
    gold: dict[str, str] = Field(default_factory=dict)
    _task_file: Path | None = PrivateAttr(default=None)

    @property
    def task_file(self) -> Path | None:
        return self._task_file

    @property
    def task_dir(self) -> Path:
        """The folder relative paths in the task resolve against."""
        return self._task_file.parent if self._task_file else Path.cwd()

    @property
    def domain(self) -> str:
        """OSWorld's domain: the name of the folder the task file is in."""
        return self._task_file.parent.name if self._task_file else "tasks"

    def local_file(self, ref: str) -> Path:
        """The existing local file `ref` names (relative to the task file, or a file:// URL)."""
        try:
            path = local_source(ref, self.task_dir)
        except ValueError as e:
            raise UnsupportedStep(str(e)) from None
        if not path.is_file():
            raise UnsupportedStep(f"{ref} is not a local file")
        return path

    def setup_ops(self) -> list[Op]:
        return plan_steps(self.config, self.local_file)

    def postconfig_ops(self) -> list[Op]:
        return plan_steps(self.evaluator.postconfig, self.local_file)

    def env(self) -> EnvSpec:
        return env_for(self.related_apps, self.setup_ops())


# -- checking and loading ------------------------------------------------------------------------


def task_problems(task: TaskConfig) -> list[str]:
    """Everything in `task` this package cannot run (empty when it is supported)."""
    problems = []
    for where, plan in (("config", task.setup_ops), ("postconfig", task.postconfig_ops)):
        try:
            plan()
        except UnsupportedStep as e:
            problems.append(f"{where}{e}")
    if not problems:
        try:
            task.env()
        except UnsupportedStep as e:
            problems.append(f"env: {e}")
    for call in task.evaluator.calls():
        problem = metric_problem(call.func, call.options)
        if problem:
            problems.append(problem)
        for role, getter in (("result", call.result), ("expected", call.expected)):
            problem = getter and getter_problem(getter.config(), task.task_dir)
            if problem:
                problems.append(f"{call.func} {role}: {problem}")
    for remote, ref in task.gold.items():
        try:
            task.local_file(ref)
        except UnsupportedStep as e:
            problems.append(f"gold for {remote}: {e}")
    return problems


def load_tasks(paths: str | Path | Iterable[str | Path], domains: Iterable[str] = (),
               problems: Callable[[TaskConfig], list[str]] = task_problems,
               ) -> tuple[list[TaskConfig], dict[str, str]]:
    """Load task files (folders are searched for *.json recursively), only those of `domains`
    (the task file's folder name) when given; `problems` says why a task cannot run.

    Returns the supported tasks in path order and the rest as {task id, or the file path when the
    file has no usable id: reason}. Malformed or invalid files are listed, never raised.
    """
    tasks: list[TaskConfig] = []
    unsupported: dict[str, str] = {}
    seen: dict[str, Path] = {}
    wanted = set(domains)
    for file in _task_files(paths):
        if wanted and file.parent.name not in wanted:
            continue
        key = str(file)
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except OSError as e:
            unsupported[key] = f"unreadable: {e}"
            continue
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            unsupported[key] = f"malformed JSON: {e}"
            continue
        if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"]:
            key = raw["id"]
        if key in seen:
            unsupported[f"{key} ({file})"] = f"duplicate task id, first in {seen[key]}"
            continue
        seen[key] = file
        try:
            task = TaskConfig.model_validate(raw)
        except ValidationError as e:
            unsupported[key] = f"invalid task config: {_first_error(e)}"
            continue
        task._task_file = file
        try:
            reasons = problems(task)
        except Exception as e:  # a config of a shape no check foresaw
            reasons = [f"could not be checked: {type(e).__name__}: {e}"]
        if reasons:
            unsupported[key] = "; ".join(reasons)
        else:
            tasks.append(task)
    return tasks, unsupported


def _task_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in map(Path, items):
        files.extend(sorted(item.rglob("*.json")) if item.is_dir() else [item])
    return files


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"
