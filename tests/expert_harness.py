"""Runs one scripted-expert family task on a live desktop (test helper for the families)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from cua.actions import Hotkey
from cua.envspec import load_env
from cua.expert.base import Family
from cua.tasks import CheckResult, Task
from tests.conftest import wait_for_change

ENV_FOR_APP = {"calc": "envs/calc.yaml", "impress": "envs/impress.yaml",
               "writer": "envs/writer.yaml"}


def propose_task(family: Family, source: Path, seed: int = 0) -> Task:
    """The family's task for `source` (a test failure when it proposes nothing)."""
    task = family.propose(source, random.Random(seed))
    assert task is not None, f"{family.name} proposed nothing for {source.name}"
    return task


def run_family(desktop, family: Family, source: Path, tmp: Path, seed: int = 0
               ) -> tuple[Task, CheckResult]:
    """Propose on `source`, judge, reset the desktop with a copy, run the plan, save (answering
    the Keep-format dialog), download the saved file and check it."""
    task = propose_task(family, source, seed)
    verdict = family.judge(task, source)
    assert verdict.feasible, verdict.reason
    work = tmp / source.name
    shutil.copy(source, work)
    desktop.reset(load_env(ENV_FOR_APP[family.app]), [work])
    before = desktop.download(work.name)
    for step in family.plan(task):
        report = desktop.execute(step.actions)
        assert all(r.ok for r in report.results), report
    desktop.execute([Hotkey(keys=["ctrl", "s"])])
    if any(w.title == "Confirm File Format" for w in desktop.windows()):
        desktop.execute([Hotkey(keys=["enter"])])
    saved = tmp / f"saved-{source.name}"
    saved.write_bytes(wait_for_change(desktop, work.name, before))
    return task, family.check(task, saved)
