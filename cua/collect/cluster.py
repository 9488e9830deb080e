"""Collection across hosts on Ray: one actor per desktop, each on whichever node Ray places it."""

from __future__ import annotations

import contextlib
import socket
import sys
from collections import deque
from pathlib import Path

from cua.collect.recipe import CollectRecipe
from cua.collect.worker import Worker


class RayWorker:
    """A `cua.collect.worker.Worker` (and so one desktop) inside a Ray actor. Its model clients
    are its own, so `model.concurrency` bounds each actor's requests."""

    def __init__(self, recipe: dict):
        self.worker = Worker(CollectRecipe.model_validate(recipe))

    def run(self, kind: str, unit, root: Path, upcoming=None):
        return self.worker.run(kind, unit, root, upcoming)

    def close(self) -> None:
        self.worker.close()


def check_address(address: str, timeout_s: float = 10.0) -> None:
    """A ValueError unless something answers at a `host:port` (or `ray://host:port`) cluster
    address, where `ray.init` would wait for minutes; "auto" and "local" are Ray's to resolve."""
    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"ray.address {address!r}: expected host:port, ray://host:port, auto or "
                         "local")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ValueError(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start "
                         "one (`ray start --head`) or give its address") from None


def run_on_ray(recipe: CollectRecipe, kind: str, units: list, root: Path, on_result) -> None:
    """Run units on `recipe.workers` Ray actors; results come back to this driver, which
    stores them (the run's content folder must be readable from every node). With `standby`,
    each actor is told the episode it runs next. A unit whose actor is lost (its node died) goes
    back to the queue for another actor, with the one it was told of, so a lost node loses no
    unit; the run fails only when no actor is left, and a resume finishes it."""
    import ray
    from ray.exceptions import RayActorError

    if not ray.is_initialized():
        check_address(recipe.ray.address)
        address = None if recipe.ray.address == "local" else recipe.ray.address
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    actor = ray.remote(num_cpus=recipe.ray.cpus_per_desktop)(RayWorker)
    idle = [actor.remote(recipe.model_dump(mode="json"))
            for _ in range(min(recipe.workers, len(units)))]
    live, queue, running, told = list(idle), deque(units), {}, {}
    look_ahead = recipe.standby and kind == "episode"
    # Ray's driver prints the cluster's error messages ("node … died") to stdout: they go to
    # stderr with cua's diagnostics, and stdout keeps what `--json` promises
    with contextlib.redirect_stdout(sys.stderr):
        try:
            while queue or running or told:
                for worker in [w for w in idle if w in told or queue]:
                    unit = told.pop(worker) if worker in told else queue.popleft()
                    if look_ahead and queue:
                        told[worker] = queue.popleft()
                    idle.remove(worker)
                    running[worker.run.remote(kind, unit, root, told.get(worker))] = (
                        worker, unit)
                if not running:
                    raise RuntimeError(f"every Ray actor was lost; {len(queue)} {kind} units "
                                       "did not run (resume the run to finish them)")
                (done,), _ = ray.wait(list(running), num_returns=1)
                worker, unit = running.pop(done)
                try:
                    record, screens = ray.get(done)
                except RayActorError:
                    live.remove(worker)
                    queue.extendleft([u for u in (told.pop(worker, None), unit) if u])
                    continue
                idle.append(worker)
                on_result(record, screens)
        finally:
            for worker in live:
                with contextlib.suppress(RayActorError):
                    ray.get(worker.close.remote())
                ray.kill(worker)
