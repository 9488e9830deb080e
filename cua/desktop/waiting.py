"""Poll until something holds, with a deadline: the one waiting loop of the desktop code."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """What `wait_until` waited for did not happen in time."""


def wait_until(predicate: Callable[[], T], timeout_s: float, interval_s: float = 0.02,
               what: str = "a condition") -> T:
    """Call `predicate` every `interval_s` until it returns something truthy, and return that.

    Once `timeout_s` has passed (`math.inf`: never) and one more call still returns nothing, raise
    `WaitTimeout` naming `what`. Exceptions from `predicate` propagate: it can fail early."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)
