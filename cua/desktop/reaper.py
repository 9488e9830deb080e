"""Docker desktops end with the process that started them. A container has no tie of its own to
the process that asked the engine for it, so `python -m cua.desktop.reaper`, started by that
process, reads desktop ids on stdin (`+ID` once one is up, `-ID` once it is stopped) and, when its
stdin closes (the owner exited, however it died: SIGKILL too), stops those still listed: their
containers, state folders and records."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from contextlib import suppress


class Reaper:
    """This process's reaper, started on first use (and again, told everything, if it died)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._watched: set[str] = set()
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """In a forked copy of this process: the desktops are the parent's, and so is the
        reaper (the copy holding its stdin open would keep them alive after the parent)."""
        if self._proc is not None:
            self._proc.stdin.close()
        self._proc, self._watched = None, set()
        self._lock = threading.Lock()

    def watch(self, desktop_id: str) -> None:
        with self._lock:
            self._watched.add(desktop_id)
            self._send(f"+{desktop_id}")

    def release(self, desktop_id: str) -> None:
        """The desktop was stopped: nothing to do for it any more."""
        with self._lock:
            if desktop_id in self._watched:
                self._watched.discard(desktop_id)
                self._send(f"-{desktop_id}")

    def _send(self, line: str) -> None:
        if self._proc is None or self._proc.poll() is not None:
            if not self._watched:
                return
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cua.desktop.reaper"], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, text=True, start_new_session=True)  # not Ctrl+C's
            line = "\n".join(f"+{d}" for d in sorted(self._watched))  # all, if one died
        with suppress(BrokenPipeError):  # it died just now: the next call starts another
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()


REAPER = Reaper()


def main() -> None:
    watched: set[str] = set()
    for line in sys.stdin:
        sign, desktop_id = line[:1], line[1:].strip()
        if sign == "+":
            watched.add(desktop_id)
        elif sign == "-":
            watched.discard(desktop_id)
    from cua.desktop import registry

    for desktop_id in sorted(watched):
        with suppress(Exception):  # stopped meanwhile, or the engine is gone: nothing to do
            registry.backend(registry.load(desktop_id).backend, owned=False).stop(desktop_id)


if __name__ == "__main__":
    main()
