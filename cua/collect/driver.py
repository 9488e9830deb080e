"""`cua collect`: plan a run, propose tasks, then run each as an episode (judge, act, score) on a
pool of desktops, storing everything."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from cua.collect.agents import RoleFactory
from cua.collect.pool import run_pool
from cua.collect.progress import EpisodeProgress
from cua.collect.recipe import CollectRecipe, ContentSource
from cua.collect.store import RunStore, new_run_folder, package_versions
from cua.collect.worker import EpisodeUnit, GoalUnit, Worker
from cua.content.check import ContentError, check_content
from cua.content.documents import GENERATORS
from cua.envspec import load_env
from cua.records import OUTCOMES, ContentRef, EpisodeRecord, GoalRecord, RunManifest

# -- planning -------------------------------------------------------------------------------------

def new_run(recipe: CollectRecipe) -> RunStore:
    """Create the run folder: content copied in and checked, envs resolved, manifest written.
    Content that is not there is a ValueError before anything is made."""
    _check_sources_exist(recipe.content)
    store = RunStore(new_run_folder(recipe.out.expanduser(), recipe.name))
    folder = store.root / "content"
    folder.mkdir()
    for source in _content_sources(recipe, folder):
        if source.parent != folder:
            (folder / source.name).write_bytes(source.read_bytes())
    refs, rejected = [], {}
    for path in sorted(folder.iterdir()):
        try:
            info = check_content(path)
            refs.append(ContentRef(name=path.name, kind=info.kind, sha256=info.sha256))
        except ContentError as exc:
            rejected[path.name] = exc.reason
    envs = {name: load_env(name) for name in recipe.envs}
    store.create(RunManifest(run_id=store.root.name, created=time.time(),
                             recipe=recipe.model_dump(mode="json"), versions=package_versions(),
                             envs={e.name: e for e in envs.values()}, content=refs,
                             rejected_content=rejected))
    return store


def _check_sources_exist(source: ContentSource) -> None:
    if source.folder and not source.folder.expanduser().is_dir():
        raise ValueError(f"content folder {source.folder.expanduser()} does not exist")
    missing = [str(p) for p in source.files if not p.expanduser().is_file()]
    if missing:
        raise ValueError(f"no such content file: {', '.join(missing)}")


def _content_sources(recipe: CollectRecipe, folder: Path) -> list[Path]:
    source = recipe.content
    if source.generate:
        options = dict(source.generate)
        seed = options.pop("seed", recipe.seed)
        made = []
        for key, count in options.items():
            make, pattern = GENERATORS[key]
            made += [make(folder / pattern.format(i + 1), seed=seed + i) for i in range(count)]
        return made
    if source.folder:
        root = source.folder.expanduser()
        return sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    return [p.expanduser() for p in source.files]


def goal_units(store: RunStore) -> list[GoalUnit]:
    manifest = store.manifest()
    units = []
    for ref in manifest.content:
        for env in manifest.envs.values():
            if any(ref.kind in app.content for app in env.apps):
                units.append(GoalUnit(id=f"{env.name}-{ref.sha256[:10]}", env=env, content=ref,
                                      path=str(store.root / "content" / ref.name)))
    return units


# -- running units on a pool of desktops ---------------------------------------------------------

def run_units(recipe: CollectRecipe, kind: str, units: list, root: Path, on_result) -> None:
    """Run `kind` ("goal" or "episode") units on `recipe.workers` local desktops, or on Ray
    actors when `recipe.ray` is set; `on_result(record, screens)` runs in this thread."""
    if not units:
        return
    if recipe.ray is not None:
        from cua.collect.cluster import run_on_ray
        return run_on_ray(recipe, kind, units, root, on_result)
    roles = RoleFactory(map(recipe.role_model, ("goal", "judge", "executor")))
    run_pool(lambda: Worker(recipe, roles), units, recipe.workers,
             lambda worker, unit, upcoming: worker.run(kind, unit, root, upcoming),
             lambda result: on_result(*result))


# -- the driver ----------------------------------------------------------------------------------

def collect(store: RunStore, recipe: CollectRecipe, console=None) -> dict[str, int]:
    """Propose goals, then run every planned episode not yet finished (so a resumed run finishes
    its plan with each episode run to a score exactly once; errored ones run again). Returns the
    outcome counts."""
    console = console or Console(stderr=True)
    units = goal_units(store)
    known = store.goals()
    pending = [u for u in units if u.id not in known]
    with console.status(f"proposing tasks for {len(pending)} content × env pairs…"):
        def keep_goal(record: GoalRecord, screens: dict[str, bytes]) -> None:
            _persist(store, screens)
            store.write_goal(record)
        run_units(recipe, "goal", pending, store.root, keep_goal)
    by_id = {u.id: u for u in units}
    episodes = [EpisodeUnit(by_id[g.id], t) for g in store.goals().values() if g.id in by_id
                for t in g.tasks]
    finished = [r for r in store.episodes().values() if r.outcome != "error"]
    finished_ids = {r.id for r in finished}
    todo = [e for e in episodes if e.task.id not in finished_ids]
    with EpisodeProgress(console, "episodes", len(episodes), finished) as progress:
        def keep_episode(record: EpisodeRecord, screens: dict[str, bytes]) -> None:
            _persist(store, screens)
            store.write_episode(record)
            progress.add(record)

        run_units(recipe, "episode", todo, store.root, keep_episode)
    return {k: progress.counts[k] for k in OUTCOMES}


def _persist(store: RunStore, screens: dict[str, bytes]) -> None:
    for png in screens.values():
        store.put_screen(png)
