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
# LibreOffice redraws its toolbars, Name Box and status bar 300 ms after a change (SfxBindings'
# first timeout), idle until then, so it looks settled too soon; Chromium, Mousepad and xterm draw
# what an action changes at once (`cua bench desktop --recheck 0.6`: no stale screen at 0.05 s).
MIN_WAIT_S = {"soffice.bin": 0.45}
DEFAULT_MIN_WAIT_S = 0.05
# How long after a reset (its screen still) a program's own start-up job is still pending.
# LibreOffice's runs ~0.3 s later, idle until then: an action before it has its toolbars redrawn
# only 0.6-0.75 s later, past the minimum wait (the first step after a reset was stale), one
# 0.3 s or more after the reset at the usual 0.3-0.45 s.
LOAD_WAIT_S = {"soffice.bin": 0.5}


def min_wait(policy: SettlePolicy, programs: Iterable[str] = ()) -> float:
    """The policy's minimum wait, or by default the longest that `programs` (the process names
    of the apps running) need."""
    if policy.min_wait_s is not None:
        return policy.min_wait_s
    return max((MIN_WAIT_S.get(name, DEFAULT_MIN_WAIT_S) for name in programs),
               default=DEFAULT_MIN_WAIT_S)


def load_wait(policy: SettlePolicy, programs: Iterable[str] = ()) -> float:
    """How long after a reset the first action waits: the longest that `programs` need, none
    where the policy sets its own minimum wait (speed over fresh screens)."""
    if policy.min_wait_s is not None:
        return 0.0
    return max((LOAD_WAIT_S.get(name, 0.0) for name in programs), default=0.0)


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
