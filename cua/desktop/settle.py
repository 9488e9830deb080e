"""Wait until the screen stops changing instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from cua.envspec import SettlePolicy
from cua.records import SettleReport


def changed_fraction(a: np.ndarray, b: np.ndarray, stride: int = 2) -> float:
    """Fraction of sampled pixels (every `stride`-th row and column) that differ."""
    sa, sb = a[::stride, ::stride, :3], b[::stride, ::stride, :3]
    return float(np.count_nonzero((sa != sb).any(axis=2))) / (sa.shape[0] * sa.shape[1])


def wait_settled(grab: Callable[[], np.ndarray], policy: SettlePolicy,
                 before: np.ndarray | None = None,
                 cpu: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> tuple[SettleReport, np.ndarray]:
    """Grab frames every `interval_s` until they have been stable for `quiet_s` (after at least
    `min_wait_s`), or `timeout_s` passes. With `cpu` (the apps' cumulative CPU seconds), the
    apps must also have been idle (under `cpu_idle` cores) over that quiet period: a window
    that is mapped but still loading is static yet busy. Returns the report and the last frame."""
    start = clock()
    frame = grab()
    frames, changed = 1, before is not None and changed_fraction(before, frame) > policy.threshold
    stable_since, cpu_since = clock(), cpu() if cpu else 0.0
    while True:
        now = clock()
        if now - start >= policy.timeout_s:
            return SettleReport(settled=False, changed=changed, waited_s=now - start,
                                frames=frames), frame
        quiet = now - stable_since
        if frames > 1 and now - start >= policy.min_wait_s and quiet >= policy.quiet_s:
            busy = cpu is not None and (cpu() - cpu_since) / quiet > policy.cpu_idle
            if not busy:
                return SettleReport(settled=True, changed=changed, waited_s=now - start,
                                    frames=frames), frame
            stable_since, cpu_since = now, cpu()
        sleep(policy.interval_s)
        previous, frame = frame, grab()
        frames += 1
        if changed_fraction(previous, frame) > policy.threshold:
            stable_since, cpu_since = clock(), cpu() if cpu else 0.0
            changed = True
        elif before is not None and not changed:
            changed = changed_fraction(before, frame) > policy.threshold
