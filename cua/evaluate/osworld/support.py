"""Which OSWorld tasks a cua desktop can run, and for each one it cannot, why: the apps a task
names, its setup and postconfig steps and its getters, checked against what cua desktops have."""

from __future__ import annotations

import shlex
from collections.abc import Collection
from typing import Any

from pydantic import BaseModel

from cua.evaluate.osworld.scorer_env import DESKTOP_ENV
from cua.evaluate.taskconfig import TaskConfig

ACCOUNT = "needs a Google account and its credentials, which no user of this run has"
# OSWorld's related_apps names of apps cua desktops do not have, with the reason.
MISSING_APPS = {"vscode": "VS Code", "vs_code": "VS Code"}
# Programs OSWorld's steps and command getters run that are not in cua desktops (`google-chrome`
# and `nautilus` are: Chromium and PCManFM stand in for them, see
# cua.desktop.apps.program_stand_ins).
MISSING_PROGRAMS = {
    "code": "VS Code", "pulseaudio": "PulseAudio", "timedatectl": "systemd's timedatectl",
}
# Programs that need root, which only a docker desktop started for sudo grants (its container is
# the sandbox): package installs, and sudo itself.
NEED_SUDO = {"sudo", "apt", "apt-get"}
SHELLS = {"bash", "/bin/bash", "sh", "/bin/sh"}
COMMAND_GETTERS = {"vm_command_line", "vm_command_error"}
COMMAND_STEPS = {"execute", "command", "launch", "execute_with_verification"}
UNSUPPORTED_STEPS = {"googledrive": ACCOUNT, "login": ACCOUNT}
UNSUPPORTED_GETTERS = {"googledrive_file": ACCOUNT, "vscode_config": "needs VS Code"}


class Runnable(BaseModel):
    """A dry run's answer for one domain: how many tasks run and why each other one does not."""

    runnable: int = 0
    not_runnable: dict[str, list[str]] = {}


def task_problems(task: TaskConfig, commands: bool,
                  offered: tuple[Collection[str], Collection[str]] | None = None,
                  sudo: bool = False) -> list[str]:
    """Why `task` cannot run on a cua desktop (empty: it can). `commands`: whether the desktop
    runs the shell and Python commands OSWorld's steps send (docker, or the local backend with
    host commands allowed); `offered`: the getter types and metric functions of the installed
    desktop-env, which scores the task; `sudo`: whether those commands may run sudo (docker)."""
    problems = []
    if offered is not None:
        getters, metrics = offered
        for call in task.evaluator.calls():
            if call.func != "infeasible" and call.func not in metrics:
                problems.append(f"metric {call.func}: not in the installed {DESKTOP_ENV}")
            for getter in (call.result, call.expected):
                if getter is not None and getter.type not in getters:
                    problems.append(f"getter {getter.type}: not in the installed {DESKTOP_ENV}")
    for app in task.related_apps:
        name = app.lower()
        if name in MISSING_APPS:
            problems.append(f"app {app}: {MISSING_APPS[name]} is not in cua desktops")
    for where, steps in (("config", task.config), ("postconfig", task.evaluator.postconfig)):
        for step in steps:
            problem = _step_problem(step.type, step.parameters, commands, sudo)
            if problem:
                problems.append(f"{where} {step.type}: {problem}")
    for call in task.evaluator.calls():
        for getter in (call.result, call.expected):
            if getter is not None and getter.type in UNSUPPORTED_GETTERS:
                problems.append(f"getter {getter.type}: {UNSUPPORTED_GETTERS[getter.type]}")
            elif getter is not None and getter.type in COMMAND_GETTERS:
                problem = _command_problem(getter.config().get("command", ""), commands, sudo)
                if problem:
                    problems.append(f"getter {getter.type}: {problem}")
    return list(dict.fromkeys(problems))


def _step_problem(kind: str, parameters: dict[str, Any], commands: bool,
                  sudo: bool) -> str | None:
    if kind in UNSUPPORTED_STEPS:
        return UNSUPPORTED_STEPS[kind]
    if kind not in COMMAND_STEPS:
        return None
    return _command_problem(parameters.get("command", ""), commands, sudo)


def _command_problem(command: str | list, commands: bool, sudo: bool) -> str | None:
    """Why a command OSWorld sends cannot run in a cua desktop, or None."""
    programs = _programs(command)
    missing = [p for p in programs if p in MISSING_PROGRAMS]
    if missing:
        return f"needs {MISSING_PROGRAMS[missing[0]]}, which is not in cua desktops"
    rooted = [p for p in programs if p in NEED_SUDO]
    if rooted and not sudo:
        return (f"needs root ({rooted[0]}), which only a docker desktop grants (its container "
                f"is the sandbox)")
    if not commands:
        return ("runs a command in the desktop: use the docker backend (a sandbox) or allow "
                "commands on this host")
    return None


def _programs(command: str | list) -> list[str]:
    """The programs a command runs: each of a shell line's pipes and lists (`|`, `&&`, `;`),
    past `VAR=value` prefixes, and inside `bash -c "…"`."""
    if isinstance(command, str):
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # unbalanced quotes: OSWorld's server would split on spaces
            words = command.split()
    else:
        words = [str(w) for w in command]
    programs, segment = [], []
    for word in [*words, ";"]:
        if word and set(word) <= set("|&;()"):
            programs += _segment_programs(segment)
            segment = []
        else:
            segment.append(word)
    return programs


def _segment_programs(words: list[str]) -> list[str]:
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]
    if len(words) > 2 and words[0] in SHELLS and words[1] == "-c":
        return _programs(words[2])
    return words[:1]
