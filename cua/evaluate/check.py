"""`cua eval check`: every task must be solvable and not already solved.

For each task the untouched initial state (setup, then postconfig, no agent) must fail its evaluator,
and a gold result must pass it: the gold files shipped with the task (`gold`) when it has them,
else the document its reference solution (`solution`) produces on a live desktop, which is kept in
the output folder as the gold result.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel

from cua.collect.agents import RoleFactory
from cua.collect.pool import run_pool
from cua.desktop.ops import home_path
from cua.evaluate.runner import EvalRecipe, EvalWorker
from cua.evaluate.taskconfig import TaskConfig
from cua.scoring import evaluate


class TaskCheck(BaseModel):
    id: str
    domain: str
    initial_score: float | None = None
    gold_score: float | None = None
    gold: str = ""          # "files" or "solution"
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def gold_fetch(task: TaskConfig):
    """A desktop-file reader that answers with the task's gold files."""
    shipped = {home_path(remote): ref for remote, ref in task.gold.items()}

    def fetch(path: str) -> bytes:
        ref = shipped.get(home_path(path))
        if ref is None:
            raise FileNotFoundError(f"the task ships no gold file for {path}")
        return task.local_file(ref).read_bytes()
    return fetch


def check_task(worker: EvalWorker, task: TaskConfig, out: Path) -> TaskCheck:
    folder = out / task.domain / task.id
    shutil.rmtree(folder, ignore_errors=True)
    row = TaskCheck(id=task.id, domain=task.domain)
    initial = worker.attempt(task, folder / "initial", act=False).record
    if initial.evaluation is None:
        row.problem = f"the initial state could not be scored: {initial.error}"
        return row
    row.initial_score = initial.evaluation.score
    if task.gold:
        row.gold = "files"
        gold = evaluate(task.evaluator, gold_fetch(task), task.task_dir, folder / "gold")
    elif task.solution is not None:
        row.gold = "solution"
        solved = worker.attempt(task, folder / "gold").record
        if solved.evaluation is None:
            row.problem = f"the reference solution did not run: {solved.error}"
            return row
        gold = solved.evaluation
    else:
        row.problem = "no gold result: the task has neither 'gold' files nor a 'solution'"
        return row
    row.gold_score = gold.score
    if row.initial_score >= 1:
        row.problem = f"the initial state already passes ({initial.evaluation.describe()})"
    elif row.gold_score < 1:
        row.problem = f"the gold result fails ({gold.describe()})"
    return row


def check_tasks(tasks: list[TaskConfig], out: Path, backend: str = "local", workers: int = 1,
                on_result=None) -> list[TaskCheck]:
    """Check every task on `workers` desktops (the scripted expert plays the solutions)."""
    recipe = EvalRecipe(tasks=[t.task_file for t in tasks], backend=backend, workers=workers)
    roles = RoleFactory([recipe.model])
    rows: list[TaskCheck] = []

    def keep(row: TaskCheck) -> None:
        rows.append(row)
        if on_result is not None:
            on_result(row)

    run_pool(lambda: EvalWorker(recipe, roles), tasks, workers,
             lambda worker, task, _: check_task(worker, task, out), keep)
    order = {t.id: i for i, t in enumerate(tasks)}
    return sorted(rows, key=lambda r: order[r.id])
