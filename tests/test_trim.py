"""The control server gives its heap's free pages back once idle, never while a request runs."""

from __future__ import annotations

import asyncio

import pytest

from cua.desktop.trim import IdleTrim, TrimWhenIdle, malloc_trim


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def idle_trim() -> tuple[IdleTrim, Clock, list[int]]:
    clock, calls = Clock(), []
    return IdleTrim(idle_s=0.5, trim=lambda pad: calls.append(pad) or 1, clock=clock), clock, calls


def test_trims_once_per_busy_spell_after_the_idle_time_and_never_during_a_request():
    idle, clock, calls = idle_trim()
    assert not idle.trim_if_idle()  # nothing ran yet: nothing to give back
    idle.begin()
    clock.now += 5
    assert not idle.trim_if_idle()  # a request runs
    idle.end()
    clock.now += 0.4
    assert not idle.trim_if_idle()  # too soon: the next request may be on its way
    clock.now += 0.1
    assert idle.trim_if_idle() and calls == [0]
    clock.now += 10
    assert not idle.trim_if_idle() and calls == [0]  # once per spell
    idle.begin()
    idle.begin()
    idle.end()
    clock.now += 1
    assert not idle.trim_if_idle()  # one of two still runs
    idle.end()
    clock.now += 1
    assert idle.trim_if_idle() and calls == [0, 0]


def test_the_asgi_wrapper_marks_every_request_even_one_that_fails():
    idle, clock, _ = idle_trim()
    seen = []

    async def app(scope, receive, send):
        seen.append(idle.running)
        if scope.get("path") == "/boom":
            raise RuntimeError("handler failed")

    wrapped = TrimWhenIdle(app, idle)
    asyncio.run(wrapped({"type": "http", "path": "/ok"}, None, None))
    with pytest.raises(RuntimeError):
        asyncio.run(wrapped({"type": "http", "path": "/boom"}, None, None))
    asyncio.run(wrapped({"type": "lifespan"}, None, None))  # not a request
    assert seen == [1, 1, 0] and idle.running == 0
    clock.now += 1
    assert idle.trim_if_idle()


def test_glibc_trims_for_real():
    trim = malloc_trim()
    assert trim is not None and trim(0) in (0, 1)
