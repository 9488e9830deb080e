"""`wait_until`, the desktop code's one polling loop."""

import time

import pytest

from cua.desktop.waiting import WaitTimeout, wait_until


def test_returns_the_first_truthy_value():
    values = iter([None, 0, "", "ready", "later"])
    assert wait_until(lambda: next(values), 5, interval_s=0) == "ready"


def test_times_out_naming_what_it_waited_for():
    calls = []
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="waiting for the moon") as caught:
        wait_until(lambda: calls.append(1), 0.1, interval_s=0.01, what="the moon")
    assert isinstance(caught.value, TimeoutError)
    assert 0.1 <= time.monotonic() - started < 2
    assert len(calls) >= 2  # polled, and once more after the deadline


def test_predicate_errors_propagate():
    def broken():
        raise ValueError("gone")

    with pytest.raises(ValueError, match="gone"):
        wait_until(broken, 5)
