"""Wait until the screen stops changing instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np

from cua.envspec import SettlePolicy
from cua.records import SettleReport

COLOUR = 0x00FFFFFF  # of a BGRA pixel read as one little-endian 32-bit word: all but alpha
# The minimum wait after an action while a program (by process name) runs, and for the others.
# LibreOffice redraws its toolbars and status bar in rounds 300 ms apart (SfxBindings' timeout),
# idle in between, so it looks settled too soon: the first round 0.3-0.45 s after a change, a
# second one 0.6-0.75 s after the first use of a command, the first action after a reset, the
# first edit of a document or Enter's status bar. Rechecked 0.6 s later, the scripted expert's
# steps were stale in 45 % at 0.45 s, none but hover tooltips at 0.8 s. Chromium, Mousepad and
# xterm draw what an action changes at once (`cua bench desktop --recheck 0.6`: none at 0.05 s).
MIN_WAIT_S = {"soffice.bin": 0.8}
DEFAULT_MIN_WAIT_S = 0.05


def min_wait(policy: SettlePolicy, programs: Iterable[str] = ()) -> float:
    """The policy's minimum wait, or by default the longest that `programs` (the process names
    of the apps running) need."""
    if policy.min_wait_s is not None:
        return policy.min_wait_s
    return max((MIN_WAIT_S.get(name, DEFAULT_MIN_WAIT_S) for name in programs),
               default=DEFAULT_MIN_WAIT_S)


def changed_fraction(a: np.ndarray, b: np.ndarray, stride: int = 2) -> float:
    """Fraction of sampled pixels (every `stride`-th row and column) whose colour differs, each
    BGRA pixel compared as one 32-bit word: on 1920×1080 frames 15× as fast as comparing the
    channels and 6× as fast as OpenCV's absdiff, for the same answer."""
    wa = a.view(np.uint32)[::stride, ::stride, 0]
    wb = b.view(np.uint32)[::stride, ::stride, 0]
    return float(np.count_nonzero((wa ^ wb) & COLOUR)) / wa.size


class Draws(Protocol):
    """What settling needs of a `cua.desktop.damage.DamageWatch`."""

    seq: int

    def wait(self, seen: int, timeout_s: float) -> int | None: ...


def wait_settled(grab: Callable[[], np.ndarray], policy: SettlePolicy,
                 before: np.ndarray | None = None,
                 cpu: Callable[[], float] | None = None,
                 draws: Draws | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> tuple[SettleReport, np.ndarray]:
    """Grab frames every `interval_s` until they have been stable for `quiet_s` (after at least
    the policy's `min_wait`), or `timeout_s` passes. With `draws` (the X server's DAMAGE
    reports), a frame is grabbed only after something was drawn, and a screen nothing is drawn
    to is stable without looking at it. With `cpu` (the seconds the apps have been busy, as
    `cua.desktop.procs.BusyClock` counts them), the apps must also have been idle (busy under
    `cpu_idle` cores) over that quiet period: a window that is mapped but still loading is
    static yet busy. Returns the report and the last frame."""
    start, floor = clock(), min_wait(policy)
    seen = draws.seq if draws is not None else None  # read before the frame it vouches for
    frame = grab()
    frames, changed = 1, before is not None and changed_fraction(before, frame) > policy.threshold
    stable_since, cpu_since = clock(), cpu() if cpu else 0.0
    while True:
        now = clock()
        if now - start >= policy.timeout_s:
            return SettleReport(settled=False, changed=changed, waited_s=now - start,
                                frames=frames, min_wait_s=floor), frame
        quiet = now - stable_since
        watched = frames > 1 or seen is not None
        if watched and now - start >= floor and quiet >= policy.quiet_s:
            busy = cpu is not None and (cpu() - cpu_since) / quiet > policy.cpu_idle
            if not busy:
                return SettleReport(settled=True, changed=changed, waited_s=now - start,
                                    frames=frames, min_wait_s=floor), frame
            stable_since, cpu_since = now, cpu()
        if seen is not None:
            until = max(floor - (now - start), policy.quiet_s - quiet)
            latest = draws.wait(seen, min(max(until, 0.0), policy.timeout_s - (now - start)))
            if latest == seen:
                continue  # nothing drawn: the screen is as the last frame shows it
            seen = latest  # None: the watch stopped, look every interval from now on
        if seen is None:
            sleep(policy.interval_s)
        previous, frame = frame, grab()
        frames += 1
        if changed_fraction(previous, frame) > policy.threshold:
            stable_since, cpu_since = clock(), cpu() if cpu else 0.0
            changed = True
        elif before is not None and not changed:
            changed = changed_fraction(before, frame) > policy.threshold
