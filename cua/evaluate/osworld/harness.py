"""An OSWorld task on a cua desktop, set up and scored by OSWorld's own code: the files its steps
download come from the cache (fetched once), desktop-env's SetupController runs its setup steps and
its evaluator's postconfig, desktop-env's getters and metrics score the end state, all through a
`Bridge` to the desktop's control server."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cua.envspec import EnvSpec, load_env
from cua.evaluate.osworld.bridge import Bridge
from cua.evaluate.osworld.cache import prefetch, task_cache
from cua.evaluate.osworld.scorer import Scorer
from cua.evaluate.taskconfig import TaskConfig
from cua.records import ContentRef, EvalResult

ENV = "osworld"  # the bare 1920x1080 desktop the setup steps start from
# OSWorld's related_apps names → the cua app the agent's task is said to be in.
APPS = {"libreoffice_calc": "calc", "libreoffice calc": "calc", "calc": "calc",
        "libreoffice_impress": "impress", "libreoffice_writer": "writer", "writer": "writer",
        "chrome": "browser", "browser": "browser", "os": "terminal", "terminal": "terminal"}


class SetupFailed(RuntimeError):
    """A task's files could not be fetched, or its setup steps failed."""


def task_app(task: TaskConfig) -> str:
    return next((APPS[a.lower()] for a in task.related_apps if a.lower() in APPS), "files")


def task_env() -> EnvSpec:
    return load_env(ENV)


def content_ref(task: TaskConfig) -> ContentRef:
    """The first document the task's setup downloads, as run records name content."""
    for step in task.config:
        for file in step.parameters.get("files", []) if step.type == "download" else []:
            name = PurePosixPath(file["path"]).name
            return ContentRef(name=name, kind=PurePosixPath(name).suffix.lstrip(".").lower(),
                              sha256="")
    return ContentRef(name="", kind="", sha256="")


@dataclass
class OSWorldHarness:
    task: TaskConfig
    scorer: Scorer
    cache_root: Path

    def setup(self, desktop, env: EnvSpec) -> list[str]:
        fetched = prefetch(self.task, self.cache_root)
        if fetched.errors:
            raise SetupFailed(f"cannot fetch {'; '.join(fetched.errors)}")
        desktop.reset(env)
        raw = self.task.model_dump(mode="json", exclude_unset=True)
        with Bridge(desktop) as bridge:
            self.scorer.setup(raw.get("config", []), bridge.vm, self._cache(), _screen(env))
        desktop.settle()  # OSWorld's launches return at once; its runner then sleeps a minute
        return [f"cached {f.name} sha256 {f.sha256}" for f in fetched.files] + [
            f"setup {step.type}" for step in self.task.config]

    def score(self, desktop, files: Path, last_action: str | None
              ) -> tuple[list[str], EvalResult]:
        evaluator = self.task.model_dump(mode="json", exclude_unset=True)["evaluator"]
        with Bridge(desktop) as bridge:
            result = self.scorer.evaluate(evaluator, bridge.vm, self._cache(), last_action,
                                          _screen(desktop.spec))
        files.mkdir(parents=True, exist_ok=True)
        for name in self._fetched_names():
            if (self._cache() / name).is_file():
                shutil.copy2(self._cache() / name, files / name)
        return [f"postconfig {step.type}" for step in self.task.evaluator.postconfig], result

    def _cache(self) -> Path:
        return task_cache(self.cache_root, self.task)

    def _fetched_names(self) -> list[str]:
        """The cache names of the files the evaluator's getters fetch from the desktop (`dest`)."""
        dests = [g.config().get("dest") for call in self.task.evaluator.calls()
                 for g in (call.result, call.expected) if g is not None and g.type == "vm_file"]
        return [n for dest in dests for n in (dest if isinstance(dest, list) else [dest])
                if isinstance(n, str)]


def _screen(env: EnvSpec | None) -> tuple[int, int]:
    return (env.screen.width, env.screen.height) if env else (1920, 1080)
