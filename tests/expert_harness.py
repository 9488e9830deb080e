"""Runs one scripted-expert family task on a live desktop (test helper for the families)."""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

from cua.actions import Hotkey
from cua.collect.expert.base import Family
from cua.envspec import load_env
from cua.records import EvalResult, Task
from cua.scoring import Evaluator, evaluate
from cua.scoring.getters import getter_problem
from cua.scoring.metrics import metric_problem
from tests.conftest import wait_for_change


def propose_task(family: Family, source: Path, seed: int = 0) -> Task:
    """The family's task for `source` (a test failure when it proposes nothing)."""
    task = family.propose(source, random.Random(seed))
    assert task is not None, f"{family.name} proposed nothing for {source.name}"
    return task


def score(family: Family, task: Task, source: Path, data: bytes, tmp: Path) -> EvalResult:
    """The family's evaluator for `task`, checked as a task file would be, scoring `data` as the
    desktop's copy of `source`."""
    remote = f"/home/user/{source.name}"
    config = family.evaluator(task, remote)
    calls = Evaluator.model_validate(config).calls()
    problems = [metric_problem(call.func, call.options) for call in calls] + [
        getter_problem(getter.config(), tmp) for call in calls
        for getter in (call.result, call.expected) if getter is not None]
    assert "postconfig" not in config and not any(problems), problems

    def fetch(path: str) -> bytes:
        assert path == remote, path
        return data

    return evaluate(config, fetch, tmp, tempfile.mkdtemp(dir=tmp))


def run_family(desktop, family: Family, source: Path, tmp: Path, seed: int = 0
               ) -> tuple[Task, EvalResult]:
    """Propose on `source`, judge, reset the desktop with a copy, run the plan, save (answering
    the Keep-format dialog), download the saved file and score it with the family's
    evaluator."""
    task = propose_task(family, source, seed)
    verdict = family.judge(task, source)
    assert verdict.feasible, verdict.reason
    work = tmp / source.name
    shutil.copy(source, work)
    desktop.reset(load_env(family.app), [work])
    before = desktop.download(work.name)
    for step in family.plan(task):
        report = desktop.execute(step.actions)
        assert all(r.ok for r in report.results), report
    desktop.execute([Hotkey(keys=["ctrl", "s"])])
    if any(w.title == "Confirm File Format" for w in desktop.windows()):
        desktop.execute([Hotkey(keys=["enter"])])
    saved = wait_for_change(desktop, work.name, before)
    return task, score(family, task, source, saved, tmp)
