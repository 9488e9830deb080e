"""Collection across hosts on Ray: one actor per desktop, each on whichever node Ray places it."""

from __future__ import annotations

from pathlib import Path

from cua.collect.recipe import CollectRecipe
from cua.collect.worker import Worker


class RayWorker:
    """A `cua.collect.worker.Worker` (and so one desktop) inside a Ray actor. Its model clients
    are its own, so `model.concurrency` bounds each actor's requests."""

    def __init__(self, recipe: dict):
        self.worker = Worker(CollectRecipe.model_validate(recipe))

    def run(self, kind: str, unit, root: Path):
        return self.worker.run(kind, unit, root)

    def close(self) -> None:
        self.worker.close()


def run_on_ray(recipe: CollectRecipe, kind: str, units: list, root: Path, on_result) -> None:
    """Run units on `recipe.workers` Ray actors; results come back to this driver, which
    stores them (the run's content folder must be readable from every node)."""
    import ray
    from ray.util import ActorPool

    if not ray.is_initialized():
        address = None if recipe.ray.address == "local" else recipe.ray.address
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    actor = ray.remote(num_cpus=recipe.ray.cpus_per_desktop)(RayWorker)
    actors = [actor.remote(recipe.model_dump(mode="json"))
              for _ in range(min(recipe.workers, len(units)))]
    try:
        pool = ActorPool(actors)
        for record, screens in pool.map_unordered(lambda a, u: a.run.remote(kind, u, root), units):
            on_result(record, screens)
    finally:
        ray.get([a.close.remote() for a in actors])
        for a in actors:
            ray.kill(a)
