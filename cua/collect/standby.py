"""A worker's desktops: the one it runs episodes on and, with standby, a warm one set up for its
next episode in the background while it runs this one, so the next reset costs only what is left
of that set-up. Every reset is still a whole one (apps restarted, home and profile seeded afresh),
on a desktop the episode before did not touch."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from cua.collect.episode import EpisodeSpec, Prepared
from cua.desktop import registry
from cua.envspec import EnvSpec


class Standby:
    """One desktop at a time, set up in a background thread for the episode with `key`."""

    def __init__(self, backend: str, **options):
        self.backend, self.options = backend, options
        self._pending: tuple[str, Future[Prepared]] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="cua-standby")

    def turn(self, key: str, current, upcoming: tuple[str, EpisodeSpec] | None
             ) -> Prepared | None:
        """A worker's turn to `key`: the desktop set up for it, if one was, and then `current`
        (done with) is set up for `upcoming`, or closed; else `current` stays the worker's and
        `upcoming` gets a new desktop."""
        prepared = self.take(key)
        done_with = current if prepared is not None else None
        if upcoming is not None:
            self.prepare(*upcoming, done_with)
        elif done_with is not None:
            done_with.close()
        return prepared

    def prepare(self, key: str, spec: EpisodeSpec, desktop=None) -> None:
        """Set up `desktop` (one its worker is done with), or a new one, for `spec`."""
        self.discard()
        self._pending = (key, self._thread.submit(self._setup, spec, desktop))

    def take(self, key: str) -> Prepared | None:
        """The desktop set up for `key`, once its set-up has ended; None if none was."""
        if self._pending is None or self._pending[0] != key:
            self.discard()
            return None
        started, (_, future) = time.monotonic(), self._pending
        self._pending = None
        prepared = future.result()
        prepared.waited_s = time.monotonic() - started
        return prepared

    def discard(self) -> None:
        """Close the desktop set up for an episode that will not run on it."""
        if self._pending is not None:
            prepared = self._pending[1].result()
            self._pending = None
            if prepared.desktop is not None:
                prepared.desktop.close()

    def close(self) -> None:
        self.discard()
        self._thread.shutdown()

    def _setup(self, spec: EpisodeSpec, desktop) -> Prepared:
        try:  # an error is the episode's to record, as it would its own set-up's
            desktop = registry.desktop_for(spec.env, desktop, self.backend, **self.options)
        except Exception as exc:
            return Prepared(None, error=exc)
        try:
            return Prepared(desktop, spec.harness.setup(desktop, spec.env))
        except Exception as exc:
            return Prepared(desktop, error=exc)


class WorkerDesktop:
    """The desktop a worker's episodes run on: the one set up ahead (with `standby`), else the
    worker's own, started when needed. `drop` it after an episode that errored: the next one
    gets a fresh desktop."""

    def __init__(self, backend: str, standby: bool = False, **options):
        self.backend, self.options = backend, options
        self.desktop = None
        self.standby = Standby(backend, **options) if standby else None

    def for_env(self, env: EnvSpec):
        """This worker's desktop, started (or restarted, if it died) for `env`."""
        self.desktop = registry.desktop_for(env, self.desktop, self.backend, **self.options)
        return self.desktop

    def turn(self, key: str, spec: EpisodeSpec, upcoming: tuple[str, EpisodeSpec] | None
             ) -> Prepared | None:
        """The episode `key`'s turn: its desktop (`self.desktop`) and what was set up for it
        ahead, if anything was; with standby, `upcoming`'s set-up starts meanwhile."""
        prepared = (self.standby.turn(key, self.desktop, upcoming) if self.standby is not None
                    else None)
        if prepared is not None:
            self.desktop = prepared.desktop
        else:
            self.for_env(spec.env)
        return prepared

    def drop(self) -> None:
        if self.desktop is not None:
            self.desktop.close()
            self.desktop = None

    def close(self) -> None:
        self.drop()
        if self.standby is not None:
            self.standby.close()
