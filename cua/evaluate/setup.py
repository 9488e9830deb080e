"""OSWorld setup and postconfig steps as operations on a live desktop (`cua.desktop.ops`).

`plan_steps` turns a task's steps into typed operations without touching anything, so
`load_tasks` can refuse what it cannot run; `cua.desktop.ops.prepare` and `run_ops` carry them
out. Commands are never run as
given: only the shapes OSWorld tasks use are recognised (starting an app on a file, pyautogui or
xdotool key presses and typing, sleeps) and become structured desktop actions; anything else is
unsupported. OSWorld's desktop home `/home/user` maps to the desktop's own home.
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from cua.actions import ActionError, Click, Hotkey, Type, normalize_key
from cua.desktop.ops import Act, ActivateWindow, Launch, Op, OpenFile, Sleep, Upload, home_path
from cua.envspec import AppSpec, EnvSpec, load_env

MAX_SLEEP_S = 5.0  # readiness checks replace long fixed sleeps
# OSWorld's related_apps -> our apps.
APPS = {"libreoffice_calc": "calc", "libreoffice_impress": "impress",
        "libreoffice_writer": "writer", "chrome": "browser", "chromium": "browser",
        "gedit": "editor", "vs_code": "editor", "terminal": "terminal", "nautilus": "files"}
OFFICE_FLAGS = {"--calc": "calc", "--impress": "impress", "--writer": "writer"}
OFFICE_COMMANDS = {"libreoffice", "soffice", "localc", "loimpress", "lowriter"}
OFFICE_SHORTCUTS = {"localc": "calc", "loimpress": "impress", "lowriter": "writer"}
BROWSER_COMMANDS = {"google-chrome", "chromium", "chromium-browser", "chrome"}
SUFFIX_APPS = {".xlsx": "calc", ".xls": "calc", ".ods": "calc", ".csv": "calc", ".pptx": "impress",
               ".ppt": "impress", ".odp": "impress", ".docx": "writer", ".doc": "writer",
               ".odt": "writer", ".txt": "editor", ".html": "browser"}


class UnsupportedStep(ValueError):
    """A step this package does not run, with the reason."""


# -- planning (pure) -----------------------------------------------------------------------------


def plan_steps(steps, resolve: Callable[[str], Path]) -> list[Op]:
    """Operations for `steps` (taskconfig.SetupStep); `resolve` maps a task's local file reference to
    a path. Raises UnsupportedStep naming the first step that cannot run."""
    ops: list[Op] = []
    for i, step in enumerate(steps):
        try:
            ops.extend(_plan_step(step.type, step.params(), resolve))
        except ValidationError as e:
            where = ".".join(map(str, e.errors()[0]["loc"]))
            raise UnsupportedStep(f"[{i}] {step.type}: bad parameters ({where}: "
                                  f"{e.errors()[0]['msg']})") from None
        except (UnsupportedStep, ActionError, ValueError) as e:
            raise UnsupportedStep(f"[{i}] {step.type}: {e}") from None
    return ops


def _plan_step(kind: str, params: Any, resolve: Callable[[str], Path]) -> list[Op]:
    if kind == "download":
        return [Upload(resolve(f.url), home_path(f.path)) for f in params.files]
    if kind == "upload_file":
        return [Upload(resolve(f.local_path), home_path(f.path)) for f in params.files]
    if kind == "open":
        return [OpenFile(home_path(params.path))]
    if kind in ("launch", "execute", "command"):
        return command_ops(params.command, params.shell)
    if kind == "sleep":
        return [Sleep(min(float(params.seconds), MAX_SLEEP_S))]
    if kind == "activate_window":
        return [ActivateWindow(params.window_name, params.strict, params.by_class)]
    raise UnsupportedStep(f"step type {kind!r} is not supported")


def command_ops(command: str | list[str], shell: bool = False) -> list[Op]:
    """The operations a setup command stands for (see the module docstring)."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv:
        raise UnsupportedStep("empty command")
    name = PurePosixPath(argv[0]).name
    if name in OFFICE_COMMANDS:
        return _office(name, argv[1:])
    if name in BROWSER_COMMANDS:
        if any(not a.startswith("-") for a in argv[1:]):
            raise UnsupportedStep("opening URLs is not supported (no internet here)")
        return [Launch("browser")]
    if name.startswith("python") and len(argv) == 3 and argv[1] == "-c":
        return pyautogui_ops(argv[2])
    if name == "xdotool":
        return _xdotool(argv[1:])
    raise UnsupportedStep(f"command {' '.join(argv)[:80]!r} is not one of the recognised shapes "
                          "(office apps, browser, pyautogui keys/typing, xdotool key/type)")


def _office(name: str, args: list[str]) -> list[Op]:
    app = OFFICE_SHORTCUTS.get(name)
    files = []
    for arg in args:
        if arg in OFFICE_FLAGS:
            app = OFFICE_FLAGS[arg]
        elif arg.startswith("-"):
            continue  # --norestore and friends: our profile already has them
        else:
            files.append(home_path(arg))
    if files:
        return [OpenFile(f, app or SUFFIX_APPS.get(PurePosixPath(f).suffix.lower())) for f in files]
    if app is None:
        raise UnsupportedStep("starting LibreOffice without a file or an app flag")
    return [Launch(app)]


def _xdotool(args: list[str]) -> list[Op]:
    if len(args) >= 2 and args[0] == "key":
        return [Act(tuple(Hotkey(keys=[normalize_key(k) for k in combo.split("+")])
                          for combo in args[1:] if not combo.startswith("-")))]
    if len(args) >= 2 and args[0] == "type":
        return [Act((Type(content=args[-1]),))]
    raise UnsupportedStep(f"xdotool {' '.join(args)[:60]!r} is not supported")


def pyautogui_ops(code: str) -> list[Op]:
    """Read a `python -c` pyautogui snippet as data (never run it): imports, and calls of
    pyautogui.hotkey/press/write/typewrite/click and time.sleep with literal arguments."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise UnsupportedStep(f"python code does not parse: {e.msg}") from None
    ops: list[Op] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        call = node.value if isinstance(node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name)):
            raise UnsupportedStep(f"python statement {ast.unparse(node)[:60]!r} is not a call "
                                  "of pyautogui or time")
        target = f"{call.func.value.id}.{call.func.attr}"
        try:
            args = [ast.literal_eval(a) for a in call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        except ValueError:
            raise UnsupportedStep(f"{target}: only literal arguments are supported") from None
        ops.append(_pyautogui_op(target, args, kwargs))
    return ops


def _pyautogui_op(target: str, args: list, kwargs: dict) -> Op:
    if target == "time.sleep" and len(args) == 1:
        return Sleep(min(float(args[0]), MAX_SLEEP_S))
    if target == "pyautogui.hotkey" and args:
        return Act((Hotkey(keys=[normalize_key(str(k)) for k in args]),))
    if target == "pyautogui.press" and args:
        keys = args[0] if isinstance(args[0], list) else [args[0]]
        presses = int(kwargs.get("presses", 1))
        return Act(tuple(Hotkey(keys=[normalize_key(str(k))]) for k in keys for _ in range(presses)))
    if target in ("pyautogui.write", "pyautogui.typewrite") and args:
        if not isinstance(args[0], str):
            raise UnsupportedStep(f"{target} of a key list is not supported")
        return Act((Type(content=args[0]),))
    if target == "pyautogui.click" and len(args) == 2:
        return Act((Click(x=int(args[0]), y=int(args[1])),))
    raise UnsupportedStep(f"{target}({', '.join(map(repr, args))[:40]}) is not supported")


def env_for(related_apps: list[str], ops: list[Op]) -> EnvSpec:
    """The env a task runs in: its related apps (else the apps its files open in), with the
    settings of the first app's env file."""
    wanted = [APPS[a] for a in related_apps if a in APPS]
    wanted += [op.app or SUFFIX_APPS.get(PurePosixPath(op.remote).suffix.lower())
               for op in ops if isinstance(op, OpenFile)]
    wanted += [op.app for op in ops if isinstance(op, Launch)]
    apps = list(dict.fromkeys(a for a in wanted if a))
    if not apps:
        raise UnsupportedStep(f"no app to run: related_apps {related_apps} name none of "
                              f"{', '.join(APPS)} and no step opens a file")
    base = load_env(apps[0])
    return base.model_copy(update={"name": "+".join(apps),
                                   "apps": tuple(AppSpec(app=a) for a in apps)})
