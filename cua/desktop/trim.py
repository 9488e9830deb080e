"""Give the heap's free pages back to the system once the control server idles.

Each step grabs several full-screen frames (8 MB each at 1920x1080); glibc keeps the memory they
freed for the next ones (its mmap threshold rises to their size), 15-30 MB per server. A desktop
spends most of its time idle, waiting for the model's next action, so once no request has run for
`IDLE_S` the server trims its heap (`malloc_trim`): the hot path allocates as before."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

IDLE_S = 0.5


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class IdleTrim:
    """`begin()` and `end()` bracket each request; a daemon thread calls `trim(0)` once after
    each busy spell, when no request has run for `idle_s` (it looks every `idle_s`)."""

    def __init__(self, idle_s: float = IDLE_S, trim: Callable[[int], int] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.idle_s, self.trim, self.clock = idle_s, trim or malloc_trim(), clock
        self.running = 0  # requests running now
        self._last_end = 0.0
        self._lock, self._dirty = threading.Lock(), threading.Event()

    def begin(self) -> None:
        with self._lock:
            self.running += 1

    def end(self) -> None:
        with self._lock:
            self.running -= 1
            self._last_end = self.clock()
            self._dirty.set()

    def start(self) -> IdleTrim:
        if self.trim is not None:
            threading.Thread(target=self._run, name="idle-trim", daemon=True).start()
        return self

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            time.sleep(self.idle_s)
            self.trim_if_idle()

    def trim_if_idle(self) -> bool:
        """Trim if requests ran since the last trim and none has for `idle_s`."""
        with self._lock:
            idle = self.running == 0 and self.clock() - self._last_end >= self.idle_s
            if not (idle and self._dirty.is_set()):
                return False
            self._dirty.clear()
        self.trim(0)
        return True


class TrimWhenIdle:
    """ASGI wrapper: every HTTP request keeps `idle` from trimming while it runs."""

    def __init__(self, app, idle: IdleTrim):
        self.app, self.idle = app, idle

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.idle.begin()
        try:
            return await self.app(scope, receive, send)
        finally:
            self.idle.end()
