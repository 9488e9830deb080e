"""Operations on a live desktop that put it into a task's initial state or prepare it for scoring
(upload, open, launch, act, sleep, activate a window), and OSWorld's home `/home/user` mapped to
the desktop's own home. OSWorld's setup steps (`cua.evaluate.setup`) and collection's episodes
(`cua.collect.episode`) both become these."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cua.actions import Action
from cua.desktop.apps import WINDOW_CLASS
from cua.envspec import EnvSpec

OSWORLD_HOME = PurePosixPath("/home/user")


class OutsideHome(ValueError):
    """A desktop path that does not name a file inside the desktop's home."""


# -- operations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    source: Path   # a local file
    remote: str    # home-relative path on the desktop


@dataclass(frozen=True)
class OpenFile:
    remote: str
    app: str | None = None


@dataclass(frozen=True)
class Launch:
    app: str


@dataclass(frozen=True)
class Act:
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class ActivateWindow:
    name: str
    strict: bool = False
    by_class: bool = False


Op = Upload | OpenFile | Launch | Act | Sleep | ActivateWindow


def in_osworld_home(path: str) -> PurePosixPath:
    """`/home/user/x` (OSWorld's home) and `~/x` as the home-relative `x`; other paths as given."""
    pure = PurePosixPath(path)
    if pure.parts[:1] == ("~",):
        return pure.relative_to("~")
    return pure.relative_to(OSWORLD_HOME) if pure.is_relative_to(OSWORLD_HOME) else pure


def home_path(path: str) -> str:
    """The home-relative form of an OSWorld desktop path (`/home/user/x`, `~/x` or `x`)."""
    pure = in_osworld_home(path)
    if pure.is_absolute():
        raise OutsideHome(f"{path}: only paths under {OSWORLD_HOME} exist on the desktop")
    if not pure.parts or ".." in pure.parts:
        raise OutsideHome(f"{path}: not a file path inside the home")
    return str(pure)



# -- running (I/O) ------------------------------------------------------------------------------


def prepare(desktop, env: EnvSpec, ops: list[Op]) -> list[str]:
    """Reset `desktop` into the task's initial state: empty its home, upload the files, start
    the env's apps on the files the leading open steps name, then run the remaining steps in
    order.
    Returns a log line per operation."""
    uploads = [op for op in ops if isinstance(op, Upload)]
    rest = [op for op in ops if not isinstance(op, Upload)]
    first = 0
    while first < len(rest) and isinstance(rest[first], OpenFile):
        first += 1
    log = [f"upload {op.remote}" for op in uploads]
    desktop.clear_home()
    for op in uploads:
        desktop.upload(op.source, op.remote)
    opened = [op.remote for op in rest[:first]]
    desktop.reset(env, files=opened, clear_home=False)
    log += [f"open {name}" for name in opened]
    return log + run_ops(desktop, rest[first:])


def run_ops(desktop, ops: list[Op]) -> list[str]:
    """Carry out `ops` on a reset desktop; a window that is not there is logged, not fatal."""
    log = []
    for op in ops:
        if isinstance(op, Upload):
            desktop.upload(op.source, op.remote)
            log.append(f"upload {op.remote}")
        elif isinstance(op, OpenFile):
            desktop.open(op.remote, op.app)
            log.append(f"open {op.remote}")
        elif isinstance(op, Launch):
            if not any(WINDOW_CLASS[op.app] in w.wm_class.lower() for w in desktop.windows()):
                desktop.launch(op.app)
            log.append(f"launch {op.app}")
        elif isinstance(op, Act):
            report = desktop.execute(list(op.actions))
            failed = [r.error for r in report.results if not r.ok]
            log.append(f"act {len(op.actions)} action(s)" + (f": {failed[0]}" if failed else ""))
        elif isinstance(op, Sleep):
            time.sleep(op.seconds)
            log.append(f"sleep {op.seconds:g} s")
        elif isinstance(op, ActivateWindow):
            window = find_window(desktop.windows(), op)
            if window is not None:
                desktop.activate(window.id)
            log.append(f"activate {op.name!r}" + ("" if window else ": no such window"))
    return log


def find_window(windows, op: ActivateWindow):
    """The first window `op` names (by title or WM_CLASS; exact when strict, else a
    case-insensitive substring), or None."""
    for window in windows:
        text = window.wm_class if op.by_class else window.title
        if (text == op.name) if op.strict else op.name.casefold() in text.casefold():
            return window
    return None
