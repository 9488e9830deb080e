"""The standby desktop: set up for the next episode in the background, taken by its key only; a
worker's desktop from one episode to the next."""

from __future__ import annotations

import threading

from cua.collect.standby import Standby, WorkerDesktop
from cua.desktop import registry
from cua.envspec import load_env

ENV = load_env("calc")


class FakeDesktop:
    network, sudo = ENV.network, ENV.sudo

    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


class Harness:
    def __init__(self, fail: bool = False):
        self.fail, self.thread = fail, None

    def setup(self, desktop, env):
        self.thread = threading.current_thread().name
        if self.fail:
            raise RuntimeError("calc shows a dialog instead of its window")
        return [f"reset {env.name}"]


class Spec:
    env = ENV

    def __init__(self, harness):
        self.harness = harness


def test_a_desktop_is_set_up_in_the_background_and_taken_by_its_key():
    standby, desktop, harness = Standby("local"), FakeDesktop(), Harness()
    try:
        standby.prepare("task-2", Spec(harness), desktop)
        prepared = standby.take("task-2")
        assert prepared.desktop is desktop and prepared.setup_log == ["reset calc"]
        assert prepared.error is None and not desktop.closed
        assert harness.thread.startswith("cua-standby")
        assert standby.take("task-2") is None  # taken once
    finally:
        standby.close()


def test_a_desktop_set_up_for_another_episode_is_closed():
    standby, desktop = Standby("local"), FakeDesktop()
    try:
        standby.prepare("task-2", Spec(Harness()), desktop)
        assert standby.take("task-3") is None
        assert desktop.closed
    finally:
        standby.close()


def test_a_failed_set_up_is_handed_to_the_episode_to_record():
    standby, desktop = Standby("local"), FakeDesktop()
    try:
        standby.prepare("task-2", Spec(Harness(fail=True)), desktop)
        prepared = standby.take("task-2")
        assert prepared.desktop is desktop
        assert str(prepared.error) == "calc shows a dialog instead of its window"
    finally:
        standby.close()


def test_closing_closes_a_desktop_never_taken():
    standby, desktop = Standby("local"), FakeDesktop()
    standby.prepare("task-2", Spec(Harness()), desktop)
    standby.close()
    assert desktop.closed


def test_a_turn_hands_over_the_prepared_desktop_and_readies_the_one_done_with():
    standby, first, second = Standby("local"), FakeDesktop(), FakeDesktop()
    try:
        standby.prepare("task-2", Spec(Harness()), second)
        prepared = standby.turn("task-2", first, ("task-3", Spec(Harness())))
        assert prepared.desktop is second
        assert standby.take("task-3").desktop is first and not first.closed
        standby.prepare("task-4", Spec(Harness()), first)
        assert standby.turn("task-4", second, None).desktop is first
        assert second.closed  # the last episode: nothing to set up for
    finally:
        standby.close()


def test_a_worker_runs_on_its_own_desktop_until_one_was_set_up_ahead(monkeypatch):
    started = []

    def desktop_for(env, current, backend):
        if current is None:
            current = FakeDesktop()
            started.append(current)
        return current

    monkeypatch.setattr(registry, "desktop_for", desktop_for)
    desktops = WorkerDesktop("local", standby=True)
    try:
        assert desktops.turn("task-1", Spec(Harness()), ("task-2", Spec(Harness()))) is None
        own = desktops.desktop
        prepared = desktops.turn("task-2", Spec(Harness()), None)
        assert prepared.desktop is not own and desktops.desktop is prepared.desktop
        assert set(started) == {own, prepared.desktop}
        assert own.closed  # the episode before's desktop: nothing left to set up on it
        desktops.drop()  # after an error
        assert prepared.desktop.closed and desktops.desktop is None
    finally:
        desktops.close()
