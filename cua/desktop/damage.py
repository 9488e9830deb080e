"""The X DAMAGE extension as a change signal: settling looks at a frame only after something was
drawn to the screen, and an idle screen costs nothing."""

from __future__ import annotations

import contextlib
import select
import threading

from Xlib.display import Display
from Xlib.error import ConnectionClosedError
from Xlib.ext import damage

POLL_S = 0.25  # how often the reading thread checks that it should stop


class DamageWatch:
    """Counts the times something was drawn to the screen, at most once per `interval_s`, from a
    thread on its own connection. A draw is counted only after the damage it left is cleared
    (and the server has done so): a frame grabbed once the count changed holds every draw
    counted, and any draw after it is counted again."""

    def __init__(self, display: str, interval_s: float = 0.02):
        self.seq = 0
        self.interval_s = interval_s  # a session sets its env's settle interval at each reset
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._conn = Display(display)
        if not self._conn.has_extension("DAMAGE"):
            self._conn.close()
            raise RuntimeError(f"the X server of {display} has no DAMAGE extension")
        self._conn.damage_query_version()
        self._damage = self._conn.screen().root.damage_create(damage.DamageReportNonEmpty)
        self._conn.sync()
        self._thread = threading.Thread(target=self._read, name=f"damage{display}", daemon=True)
        self._thread.start()

    def wait(self, seen: int, timeout_s: float) -> int | None:
        """The count once it differs from `seen` (something was drawn since), `seen` after
        `timeout_s` without a draw, or None if the watch has stopped (the X server is gone)."""
        with self._changed:
            self._changed.wait_for(lambda: self.seq != seen or self._stop.is_set(), timeout_s)
            return None if self._stop.is_set() else self.seq

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(ConnectionClosedError, OSError):  # the X server is gone
            self._conn.close()

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._conn.pending_events():
                    select.select([self._conn.fileno()], [], [], POLL_S)
                if not self._conn.pending_events():
                    continue
                while self._conn.pending_events():
                    self._conn.next_event()
                self._conn.damage_subtract(self._damage)  # the next draw is reported again
                self._conn.sync()
                with self._changed:
                    self.seq += 1
                    self._changed.notify_all()
                self._stop.wait(self.interval_s)
        except (ConnectionClosedError, OSError):  # the X server went away
            pass
        finally:
            self._stop.set()
            with self._changed:
                self._changed.notify_all()
