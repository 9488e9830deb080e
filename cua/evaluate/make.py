"""`cua eval make`: OSWorld task files from documents and the scripted expert's template families.

Each task downloads its document (referenced by a path relative to the task file, never copied),
opens it, and carries the family's rule-based evaluator, a postconfig that saves the document the
way OSWorld's office tasks do (activate the window, ctrl+s, Enter for the Keep-format dialog), and
the instance as its reference `solution`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from cua.collect.expert import check_families, families
from cua.collect.expert.scripted import ScriptedGoalGenerator, ScriptedJudge
from cua.collect.roles import Grounding
from cua.content.check import ContentError, check_content
from cua.envspec import load_env
from cua.records import Task

DOMAINS = {"calc": "libreoffice_calc", "impress": "libreoffice_impress",
           "writer": "libreoffice_writer"}
SAVE = ("import pyautogui; import time; pyautogui.hotkey('ctrl', 's'); time.sleep(0.5); "
        "pyautogui.press('enter')")


def save_postconfig(name: str) -> list[dict]:
    """OSWorld's save-before-reading steps for the document `name`."""
    return [{"type": "activate_window", "parameters": {"window_name": name}},
            {"type": "execute", "parameters": {"command": ["python", "-c", SAVE]}},
            {"type": "sleep", "parameters": {"seconds": 0.5}}]


def task_config(task: Task, source: Path, task_file: Path) -> dict:
    """The OSWorld task config of a family instance over `source`, for a file at `task_file`."""
    family = families()[task.family]
    remote = f"/home/user/{source.name}"
    original = os.path.relpath(source.resolve(), task_file.parent.resolve())
    evaluator = family.evaluator(task, remote)
    return {"id": task_file.stem, "snapshot": family.app, "instruction": task.instruction,
            "source": f"cua:{family.name}",
            "config": [{"type": "download",
                        "parameters": {"files": [{"url": original, "path": remote}]}},
                       {"type": "open", "parameters": {"path": remote}}],
            "related_apps": [DOMAINS[family.app]],
            "evaluator": {**evaluator, "postconfig": save_postconfig(source.name)},
            "solution": {"family": family.name, "params": task.params}}


def task_id(task: Task, source: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", source.stem).strip("-").lower()[:40]
    digest = hashlib.sha256(json.dumps([source.name, task.params], sort_keys=True,
                                       default=str).encode()).hexdigest()[:8]
    return f"{task.family.replace('.', '-').replace('_', '-')}-{stem}-{digest}"


def _no_desktop() -> bytes:
    raise RuntimeError("`cua eval make` grounds tasks in files, on no desktop")


def make_tasks(sources: list[Path], out: Path, names: list[str] = (), per_file: int = 1,
               seed: int = 0) -> tuple[list[Path], dict[str, str]]:
    """Write up to `per_file` feasible tasks per document into `out/{domain}/{id}.json`.
    Returns the task files and the documents that gave none, with the reason; unknown family
    `names` are a ValueError."""
    check_families(list(names))
    generator, judge = ScriptedGoalGenerator(seed, names), ScriptedJudge()
    written, skipped = [], {}
    for source in sorted(sources):
        try:
            kind = check_content(source).kind
        except ContentError as e:
            skipped[str(source)] = e.reason
            continue
        apps = sorted({f.app for f in families().values() if kind in f.kinds})
        groundings = [Grounding(source.stem, load_env(app), source, kind, _no_desktop)
                      for app in apps]
        tasks = [t for g in groundings for t in generator.propose(g, per_file).tasks][:per_file]
        tasks = [t for t in tasks if judge.judge(t, groundings[0])[0].feasible]
        if not tasks:
            skipped[str(source)] = "no template family offers a feasible task"
        for task in tasks:
            file = out / DOMAINS[task.app] / f"{task_id(task, source)}.json"
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(task_config(task, source, file), indent=1) + "\n")
            written.append(file)
    return written, skipped
