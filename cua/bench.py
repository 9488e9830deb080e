"""`cua bench`: figures, never pass/fail. Each bench returns a JSON-able dict of figures and has
a table for people: desktops (reset, screenshot, step overhead, memory), collection (episodes/hour
and where a step's time goes), expansion (samples/s, dataset bytes), SFT (tokens/s, memory) and
OSWorld's tasks (reset-to-ready, the untouched state's score)."""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from cua.actions import Click, Hotkey, Type
from cua.collect.store import write_atomic
from cua.content.documents import (
    make_document,
    make_notes,
    make_page,
    make_presentation,
    make_workbook,
)
from cua.desktop import procs, registry
from cua.desktop.local import ZYGOTE
from cua.envspec import EnvSpec, load_env

SAMPLE_FOR = {"calc": make_workbook, "impress": make_presentation, "writer": make_document,
              "browser": make_page, "editor": make_notes}
SUFFIX = {"calc": ".xlsx", "impress": ".pptx", "writer": ".docx", "browser": ".html",
          "editor": ".txt"}
OSWORLD_READY_S = 60.0  # OSWorld's runner sleeps this long after each reset, after its VM boots
# Memory is taken at rest, this long after the last step, as while the model thinks: the server
# has given back what the step's frames took by then (cua.desktop.trim).
REST_S = 1.5


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "p50": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


def _step_actions(spec: EnvSpec, i: int):
    """A realistic cycle: click somewhere in the document, type, move with a key."""
    x, y = 200 + (i * 97) % 800, 300 + (i * 53) % 400
    return [[Click(x=x, y=y)], [Type(content=f"{i}\n")], [Hotkey(keys=["down"])]][i % 3]


def _run_one(spec: EnvSpec, content: list[Path], steps: int, resets: int, backend: str,
             recheck_s: float = 0.0, sharing: int = 1) -> dict:
    figures = {"reset_s": [], "screenshot_s": [], "step_s": [], "stale": 0, "pss_bytes": 0,
               "error": None}
    try:
        desktop = registry.backend(backend).start()
    except Exception as exc:  # a figure, not a crash: count it and go on
        figures["error"] = f"start: {exc}"
        return figures
    try:
        for _ in range(resets):
            t0 = time.perf_counter()
            desktop.reset(spec, content)
            figures["reset_s"].append(time.perf_counter() - t0)
        for i in range(steps):  # a step: its actions and the screen after them, one request
            t0 = time.perf_counter()
            report = desktop.execute(_step_actions(spec, i), observe=True)
            t1 = time.perf_counter()
            desktop.screenshot_png()
            t2 = time.perf_counter()
            if not all(r.ok for r in report.results):
                raise RuntimeError(report.results[-1].error)
            figures["step_s"].append(t1 - t0)
            figures["screenshot_s"].append(t2 - t1)
            if recheck_s:  # the step's screen against the screen once the apps surely finished
                time.sleep(recheck_s)
                figures["stale"] += desktop.screenshot_png() != report.screen.png
        time.sleep(REST_S)
        figures["pss_bytes"] = procs.pss_bytes(procs.marked_pids(desktop.id))
        if backend == "local" and ZYGOTE.pid:  # its share of what the `sharing` servers share
            figures["pss_bytes"] += procs.pss_bytes([ZYGOTE.pid]) // sharing
    except Exception as exc:
        figures["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        desktop.close()
    return figures


def bench_desktops(spec: EnvSpec, desktops: int, steps: int, resets: int, backend: str,
                   recheck_s: float = 0.0) -> dict:
    """Run `desktops` desktops at once, each resetting `resets` times then stepping `steps`
    times; returns p50/p95 figures and how many ran without an error. With `recheck_s`, also the
    fraction of steps whose screen differs from the screen `recheck_s` later (stale: returned
    before the app finished drawing)."""
    with tempfile.TemporaryDirectory(prefix="cua-bench-") as tmp:
        content = [SAMPLE_FOR[a.app](Path(tmp) / f"sample{SUFFIX[a.app]}", seed=7)
                   for a in spec.apps if a.app in SAMPLE_FOR]
        start = time.perf_counter()
        with ThreadPoolExecutor(desktops) as pool:
            runs = list(pool.map(
                lambda _: _run_one(spec, content, steps, resets, backend, recheck_s, desktops),
                range(desktops)))
        wall = time.perf_counter() - start
    ok = [r for r in runs if r["error"] is None]
    stepped = sum(len(r["step_s"]) for r in runs)
    return {
        "env": spec.name, "backend": backend, "desktops": desktops, "steps": steps,
        "desktops_without_error": len(ok), "errors": [r["error"] for r in runs if r["error"]],
        "reset_s": percentiles([v for r in runs for v in r["reset_s"]]),
        "screenshot_s": percentiles([v for r in runs for v in r["screenshot_s"]]),
        "step_overhead_s": percentiles([v for r in runs for v in r["step_s"]]),
        "pss_mb_per_desktop": percentiles([r["pss_bytes"] / 2**20 for r in ok]),
        "steps_per_s": stepped / wall,  # the rechecks' waits count
        "wall_s": wall,
        **({"stale_screens": sum(r["stale"] for r in runs) / max(1, stepped)}
           if recheck_s else {}),
    }


def desktop_table(figures: dict) -> Table:
    table = Table("figure", "p50", "p95", "n", title=f"cua bench desktop: {figures['desktops']} "
                  f"× {figures['env']} ({figures['backend']})",
                  caption=f"desktops without error: {figures['desktops_without_error']}/"
                  f"{figures['desktops']} · {figures['steps_per_s']:.1f} steps/s overall"
                  + (f" · stale screens {figures['stale_screens']:.1%}"
                     if "stale_screens" in figures else ""))
    for key, unit in (("reset_s", "s"), ("screenshot_s", "s"), ("step_overhead_s", "s"),
                      ("pss_mb_per_desktop", "MB")):
        row = figures[key]
        if row["n"]:
            table.add_row(key, f"{row['p50']:.3f} {unit}", f"{row['p95']:.3f} {unit}",
                          str(row["n"]))
    return table


def bench_collect(desktop_counts: list[int], episodes: int, console: Console,
                  standby: bool = False, recheck_s: float = 0.0) -> dict:
    """Episodes/hour and steps/s of the scripted expert over generated workbooks, per number of
    desktops running at once (the same plan each time), where a step's time goes, and how long
    episodes waited for their set-up (with `standby`, done ahead on each worker's second
    desktop). With `recheck_s`, also the fraction of steps whose screen changed within that time
    after it was returned (stale); the rechecks' waits then count in episodes/hour and steps/s,
    not in a step's parts."""
    from cua.collect.driver import collect, new_run
    from cua.collect.recipe import CollectRecipe

    figures = {}
    with tempfile.TemporaryDirectory(prefix="cua-bench-") as tmp:
        calc = load_env("calc")
        env = Path(tmp) / "calc.yaml"
        env.write_text(yaml.safe_dump(calc.model_copy(update={"settle": calc.settle.model_copy(
            update={"recheck_s": recheck_s})}).model_dump(mode="json")))
        for count in desktop_counts:
            recipe = CollectRecipe.model_validate({
                "name": f"bench-{count}", "out": tmp, "envs": [str(env)], "workers": count,
                "standby": standby, "tasks_per_content": 3,
                "content": {"generate": {"workbooks": -(-episodes // 3), "seed": 11}}})
            store = new_run(recipe)
            start = time.perf_counter()
            outcomes = collect(store, recipe, console)
            wall = time.perf_counter() - start
            records = list(store.episodes().values())
            steps = [s for e in records for s in e.steps]
            figures[str(count)] = {
                "episodes": len(records), "steps": len(steps), "wall_s": wall,
                "episodes_per_hour": len(records) / wall * 3600, "steps_per_s": len(steps) / wall,
                "outcomes": outcomes, "step_s": _step_shares(steps, store, Path(tmp) / "persist",
                                                              recheck_s),
                "setup_s": percentiles([e.setup_seconds for e in records]),
                "set_up_ahead": sum(e.set_up_ahead for e in records)}
            if recheck_s:
                rechecked = [s.results[-1].settle.stale for s in steps
                             if s.results and s.results[-1].settle
                             and s.results[-1].settle.stale is not None]
                figures[str(count)]["stale_screens"] = sum(rechecked) / max(len(rechecked), 1)
    return figures


def collect_table(figures: dict) -> Table:
    rechecked = any("stale_screens" in row for row in figures.values())
    table = Table("desktops", "episodes", "episodes/hour", "steps/s", "set-up p50",
                  "step p50 (no model)", "act", "settle", "screenshot", "model", "persist",
                  *(["stale"] if rechecked else []),
                  title="cua bench collect: scripted expert on Calc")
    for count, row in figures.items():
        share = row["step_s"]["share"]
        table.add_row(count, str(row["episodes"]), f"{row['episodes_per_hour']:.0f}",
                      f"{row['steps_per_s']:.2f}", f"{row['setup_s']['p50']:.2f} s",
                      f"{row['step_s']['overhead_p50']:.3f} s",
                      *(f"{share[k]:.0%}" for k in ("act", "settle", "screenshot", "model",
                                                    "persist")),
                      *([f"{row['stale_screens']:.0%}"] if rechecked else []))
    return table


def _step_shares(steps, store, scratch: Path, recheck_s: float = 0.0) -> dict:
    """Per step: act (execute minus settling and rechecks; the screen after the actions comes
    back in the same request), settle, screenshot (a step that asked for its screen: an
    episode's first), model, persist (writing its screenshot and record again into a scratch
    store)."""
    from cua.collect.store import RunStore

    copy = RunStore(scratch / store.root.name)
    parts = {"act": [], "settle": [], "screenshot": [], "model": [], "persist": []}
    for step in steps:
        settle = sum(r.settle.waited_s for r in step.results if r.settle)
        rechecks = recheck_s * sum(r.settle.stale is not None for r in step.results if r.settle)
        parts["settle"].append(settle)
        parts["act"].append(step.seconds.get("execute", 0.0) - settle - rechecks)
        parts["screenshot"].append(step.seconds.get("observe", 0.0))
        parts["model"].append(step.seconds.get("model", 0.0))
        t0 = time.perf_counter()
        copy.put_screen(store.screen(step.screenshot))
        write_atomic(scratch / "step.json", step.model_dump_json().encode())
        parts["persist"].append(time.perf_counter() - t0)
    totals = {k: sum(v) for k, v in parts.items()}
    overall = sum(totals.values()) or 1.0
    overhead = [sum(parts[k][i] for k in parts if k != "model") for i in range(len(steps))]
    return {"share": {k: v / overall for k, v in totals.items()},
            "overhead_p50": statistics.median(overhead) if overhead else 0.0,
            "overhead_p95": percentiles(overhead).get("p95", 0.0)}


# -- SFT: expansion and training figures ---------------------------------------------------------

def bench_expand(run: Path, format_name: str, model: Path | None, repeat: int) -> dict:
    """Pure expansion samples/s on one core (each episode expanded once to warm the format's
    image cache, then timed `repeat` times), the cost of the once-per-screenshot image work, and
    the dataset's bytes on disk against the unique screenshots it uses."""
    import base64

    from cua.collect.store import RunStore
    from cua.data.dataset import (
        build_dataset,
        encode_image,
        kept_episodes,
        student_format,
        text_counter,
        view_url,
    )
    from cua.data.expand import ExpandConfig, Images, expand_episode, screen_of

    store, config = RunStore(run), ExpandConfig(format=format_name)
    fmt, count_text = student_format(config, model), text_counter(model)
    episodes, _ = kept_episodes(store, config)
    if not episodes:
        raise ValueError(f"{run} has no trajectory to expand (outcomes kept: "
                         f"{', '.join(config.filters.outcomes)})")
    sizes = {s.screenshot: screen_of(e) for e in episodes for s in e.steps}
    t0 = time.perf_counter()
    screens = {digest: store.screen(digest) for digest in sizes}
    read_s = time.perf_counter() - t0
    resize_s = encode_s = 0.0
    for digest, screen in sizes.items():
        t0 = time.perf_counter()
        url = view_url(fmt, screens[digest], screen)
        t1 = time.perf_counter()
        encode_image(base64.b64decode(url.split(",", 1)[1]))
        resize_s, encode_s = resize_s + t1 - t0, encode_s + time.perf_counter() - t1
    unique = len(screens)
    samples, pure_s, images = 0, 0.0, Images()
    for episode in episodes:
        pngs = [screens[s.screenshot] for s in episode.steps]
        list(expand_episode(episode, pngs, fmt, images, config.max_tokens, count_text))
        t0 = time.perf_counter()
        for _ in range(repeat):
            samples += len(list(expand_episode(episode, pngs, fmt, images, config.max_tokens,
                                               count_text)))
        pure_s += time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="cua-bench-") as tmp:
        t0 = time.perf_counter()
        stats = build_dataset(store, Path(tmp) / "ds", config, model).stats
        build_s = time.perf_counter() - t0
    return {
        "run": str(run), "format": format_name, "model": str(model) if model else None,
        "trajectories": stats.trajectories, "samples": stats.samples, "unique_screenshots": unique,
        "pure_expansion_samples_per_s": samples / pure_s if pure_s else 0.0,
        "resize_png_ms_per_screenshot": resize_s / unique * 1000,
        "webp_ms_per_screenshot": encode_s / unique * 1000,
        "read_ms_per_screenshot": read_s / unique * 1000,
        "build_dataset_s": build_s, "build_samples_per_s": stats.samples / build_s,
        "dataset_bytes": stats.dataset_bytes, "screenshot_bytes": stats.screenshot_bytes,
        "dataset_over_screenshots": stats.dataset_bytes / max(stats.screenshot_bytes, 1),
        "image_bytes": stats.image_bytes,
    }


def expand_table(figures: dict) -> Table:
    table = Table("figure", "value", title=f"cua bench expand: {Path(figures['run']).name} as "
                  f"{figures['format']}")
    table.add_row("pure expansion (one core)",
                  f"{figures['pure_expansion_samples_per_s']:,.0f} samples/s")
    table.add_row("resize + PNG (the format's view), once per screenshot",
                  f"{figures['resize_png_ms_per_screenshot']:.1f} ms")
    table.add_row("lossless WebP for storage, once per screenshot",
                  f"{figures['webp_ms_per_screenshot']:.1f} ms")
    table.add_row("whole build (read, images, expansion, parquet)",
                  f"{figures['build_dataset_s']:.1f} s · "
                  f"{figures['build_samples_per_s']:.1f} samples/s")
    table.add_row("dataset on disk / unique screenshots",
                  f"{figures['dataset_bytes'] / 2**20:.2f} MiB / "
                  f"{figures['screenshot_bytes'] / 2**20:.2f} MiB = "
                  f"{figures['dataset_over_screenshots']:.3f}x")
    return table


def bench_sft(run: Path, recipe_path: Path, steps: int) -> dict:
    """Tokens/s and peak memory of an SFT recipe (the tiny one on the CPU) for `steps` steps,
    with a fresh model dir and dataset in a temporary folder."""
    from cua.recipes import load_recipe
    from cua.train.sft import SFTRecipe, train

    with tempfile.TemporaryDirectory(prefix="cua-bench-") as tmp:
        recipe = load_recipe(recipe_path, [
            f"run={run}", f"output_dir={tmp}/out", f"model={tmp}/model", f"max_steps={steps}",
            f"save_steps={steps * 10}"], kind=SFTRecipe)
        rates: list[float] = []
        result = train(recipe, lambda e: e["tokens_per_s"] and rates.append(e["tokens_per_s"]))
    return {"recipe": str(recipe_path), "name": recipe.name, "steps": result.steps,
            "tokens": result.tokens, "seconds": result.seconds,
            "tokens_per_s": result.tokens_per_s,
            "tokens_per_s_median_step": statistics.median(rates) if rates else None,
            "peak_memory_mb": result.peak_memory_mb, "first_loss": result.losses[0],
            "last_loss": result.losses[-1]}


def sft_table(figures: dict) -> Table:
    table = Table("figure", "value", title=f"cua bench sft: {figures['name']}")
    table.add_row("tokens/s (whole run)", f"{figures['tokens_per_s']:,.0f}")
    if figures["tokens_per_s_median_step"]:
        table.add_row("tokens/s (median step)", f"{figures['tokens_per_s_median_step']:,.0f}")
    table.add_row("peak memory", f"{figures['peak_memory_mb']:,.0f} MB")
    table.add_row("loss", f"{figures['first_loss']:.3f} -> {figures['last_loss']:.3f} "
                  f"in {figures['steps']} steps")
    return table


def bench_osworld(recipe, stand_ins: bool, limit: int | None, scorer_log: Path | None = None,
                  on_task=None) -> dict:
    """Per domain of the recipe's runnable OSWorld tasks: reset-to-ready (a desktop reset and
    OSWorld's setup, until the desktop is ready) and the untouched state's score, which must
    fail; a pass or an error is listed with its reason. With `stand_ins`, the files a task
    downloads are generated into a temporary cache (the recipe's cache is left alone).
    `scorer_log`: where desktop-env's messages go (default: stderr)."""
    from cua.collect.agents import RoleFactory
    from cua.evaluate.osworld.stand_ins import write_stand_ins
    from cua.evaluate.runner import EvalWorker, is_osworld, runnable_tasks

    rows = []
    with tempfile.TemporaryDirectory(prefix="cua-bench-osworld-") as tmp:
        if stand_ins:
            recipe = recipe.model_copy(update={"cache": Path(tmp) / "cache"})
        tasks, unsupported = runnable_tasks(recipe)
        tasks = [t for t in tasks if is_osworld(t)][:limit]
        worker = EvalWorker(recipe, RoleFactory([recipe.model]), scorer_log)
        try:
            for task in tasks:
                missing = write_stand_ins(task, recipe.cache)[1] if stand_ins else []
                row = {"id": task.id, "domain": task.domain, "outcome": "error", "score": None,
                       "ready_s": None, "error": "; ".join(missing) or None}
                if not missing:
                    record = worker.attempt(task, Path(tmp) / "files" / task.id, act=False).record
                    row |= {"outcome": record.outcome, "error": record.error,
                            "score": record.evaluation.score if record.evaluation else None,
                            "ready_s": record.setup_seconds if record.outcome != "error"
                            else None}
                rows.append(row)
                if on_task:
                    on_task(row, len(rows), len(tasks))
        finally:
            worker.close()
    domains = {}
    for domain in sorted({r["domain"] for r in rows}):
        mine = [r for r in rows if r["domain"] == domain]
        domains[domain] = {
            "tasks": len(mine),
            "initial_fails": sum(r["outcome"] == "failure" for r in mine),
            "initial_passes": sum(r["outcome"] == "success" for r in mine),
            "errors": sum(r["outcome"] == "error" for r in mine),
            "ready_s": percentiles([r["ready_s"] for r in mine if r["ready_s"] is not None])}
    ready = percentiles([r["ready_s"] for r in rows if r["ready_s"] is not None])
    return {"domains": domains, "all": ready, "not_runnable": len(unsupported),
            "stand_ins": stand_ins, "backend": recipe.backend,
            "osworld_ready_s_at_least": OSWORLD_READY_S,
            "ready_ratio": OSWORLD_READY_S / ready["p50"] if ready.get("p50") else None,
            "tasks": rows}


def osworld_table(figures: dict) -> Table:
    table = Table("domain", "tasks", "initial fails", "initial passes", "errors",
                  "reset-to-ready p50", "p95",
                  title=f"OSWorld tasks on {figures['backend']} desktops (OSWorld: a VM boot, "
                        f"then {OSWORLD_READY_S:.0f} s of sleep)")
    for domain, row in {**figures["domains"], "all": None}.items():
        if row is None:
            ready = figures["all"]
            counts = [sum(d[k] for d in figures["domains"].values())
                      for k in ("tasks", "initial_fails", "initial_passes", "errors")]
        else:
            ready, counts = row["ready_s"], [row[k] for k in ("tasks", "initial_fails",
                                                               "initial_passes", "errors")]
        seconds = [f"{ready[k]:.1f} s" if ready["n"] else "-" for k in ("p50", "p95")]
        table.add_row(domain, *map(str, counts), *seconds)
    return table
