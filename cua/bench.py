"""`cua bench desktop`: reset, screenshot, step-overhead and memory figures (not tests)."""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cua.actions import Click, Hotkey, Type
from cua.desktop import procs, registry
from cua.envspec import EnvSpec
from cua.samples import make_document, make_presentation, make_workbook

SAMPLE_FOR = {"calc": make_workbook, "impress": make_presentation, "writer": make_document}
SUFFIX = {"calc": ".xlsx", "impress": ".pptx", "writer": ".docx"}


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


def _run_one(spec: EnvSpec, content: list[Path], steps: int, resets: int, backend: str) -> dict:
    figures = {"reset_s": [], "screenshot_s": [], "step_s": [], "pss_bytes": 0, "error": None}
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
        for i in range(steps):
            t0 = time.perf_counter()
            report = desktop.execute(_step_actions(spec, i))
            t1 = time.perf_counter()
            desktop.screenshot_png()
            t2 = time.perf_counter()
            if not all(r.ok for r in report.results):
                raise RuntimeError(report.results[-1].error)
            figures["step_s"].append(t2 - t0)
            figures["screenshot_s"].append(t2 - t1)
        figures["pss_bytes"] = procs.pss_bytes(procs.marked_pids(desktop.id))
    except Exception as exc:
        figures["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        desktop.close()
    return figures


def bench_desktops(spec: EnvSpec, desktops: int, steps: int, resets: int, backend: str) -> dict:
    """Run `desktops` desktops at once, each resetting `resets` times then stepping `steps`
    times; returns p50/p95 figures and how many ran without an error."""
    with tempfile.TemporaryDirectory(prefix="cua-bench-") as tmp:
        content = [SAMPLE_FOR[a.app](Path(tmp) / f"sample{SUFFIX[a.app]}", seed=7)
                   for a in spec.apps if a.app in SAMPLE_FOR]
        start = time.perf_counter()
        with ThreadPoolExecutor(desktops) as pool:
            runs = list(pool.map(lambda _: _run_one(spec, content, steps, resets, backend),
                                 range(desktops)))
        wall = time.perf_counter() - start
    ok = [r for r in runs if r["error"] is None]
    return {
        "env": spec.name, "backend": backend, "desktops": desktops, "steps": steps,
        "desktops_without_error": len(ok), "errors": [r["error"] for r in runs if r["error"]],
        "reset_s": percentiles([v for r in runs for v in r["reset_s"]]),
        "screenshot_s": percentiles([v for r in runs for v in r["screenshot_s"]]),
        "step_overhead_s": percentiles([v for r in runs for v in r["step_s"]]),
        "pss_mb_per_desktop": percentiles([r["pss_bytes"] / 2**20 for r in ok]),
        "steps_per_s": sum(len(r["step_s"]) for r in runs) / wall,
        "wall_s": wall,
    }


def print_figures(figures: dict, console: Console) -> None:
    table = Table("figure", "p50", "p95", "n", title=f"cua bench desktop: {figures['desktops']} "
                  f"× {figures['env']} ({figures['backend']})")
    for key, unit in (("reset_s", "s"), ("screenshot_s", "s"), ("step_overhead_s", "s"),
                      ("pss_mb_per_desktop", "MB")):
        row = figures[key]
        if row["n"]:
            table.add_row(key, f"{row['p50']:.3f} {unit}", f"{row['p95']:.3f} {unit}",
                          str(row["n"]))
    console.print(table)
    console.print(f"desktops without error: {figures['desktops_without_error']}/"
                  f"{figures['desktops']}  ·  {figures['steps_per_s']:.1f} steps/s overall")
    for error in figures["errors"]:
        console.print(f"[red]{error}[/red]")
    console.print_json(data=figures)


def bench_collect(desktop_counts: list[int], episodes: int, console: Console) -> dict:
    """Episodes/hour and steps/s of the scripted expert over generated workbooks, per number of
    desktops running at once (the same plan each time)."""
    from cua.collect import collect, new_run
    from cua.config import CollectRecipe

    figures = {}
    with tempfile.TemporaryDirectory(prefix="cua-bench-") as tmp:
        for count in desktop_counts:
            recipe = CollectRecipe.model_validate({
                "name": f"bench-{count}", "out": tmp, "envs": ["calc"], "workers": count,
                "content": {"generate": {"workbooks": -(-episodes // 3), "seed": 11}},
                "tasks_per_content": 3})
            store = new_run(recipe)
            start = time.perf_counter()
            outcomes = collect(store, recipe, console)
            wall = time.perf_counter() - start
            records = store.episodes().values()
            steps = sum(len(e.steps) for e in records)
            figures[str(count)] = {"episodes": len(records), "steps": steps, "wall_s": wall,
                                   "episodes_per_hour": len(records) / wall * 3600,
                                   "steps_per_s": steps / wall, "outcomes": outcomes}
    table = Table("desktops", "episodes", "episodes/hour", "steps/s", "succeeded",
                  title="cua bench collect: scripted expert on Calc")
    for count, row in figures.items():
        table.add_row(count, str(row["episodes"]), f"{row['episodes_per_hour']:.0f}",
                      f"{row['steps_per_s']:.2f}", str(row["outcomes"]["success"]))
    console.print(table)
    console.print_json(data=figures)
    return figures


# -- SFT: expansion and training figures -----------------------------------------------------------

def bench_expand(run: Path, format_name: str, model: Path | None, repeat: int,
                 console: Console) -> dict:
    """Pure expansion samples/s on one core (each episode expanded once to warm the format's
    image cache, then timed `repeat` times), the cost of the once-per-screenshot image work, and
    the dataset's bytes on disk against the unique screenshots it uses."""
    import base64

    from cua.dataset import (build_dataset, encode_image, kept_episodes, student_format,
                             text_counter, view_url)
    from cua.expand import ExpandConfig, Images, expand_episode, screen_of
    from cua.store import RunStore

    store, config = RunStore(run), ExpandConfig(format=format_name)
    fmt, count_text = student_format(config, model), text_counter(model)
    episodes, _ = kept_episodes(store, config)
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
        manifest = build_dataset(store, Path(tmp) / "ds", config, model)
        build_s = time.perf_counter() - t0
    stats = manifest.stats
    figures = {
        "run": str(run), "format": format_name, "model": str(model) if model else None,
        "trajectories": stats.trajectories, "samples": stats.samples, "unique_screenshots": unique,
        "pure_expansion_samples_per_s": samples / pure_s if pure_s else 0.0,
        "resize_png_ms_per_screenshot": resize_s / unique * 1000 if unique else 0.0,
        "webp_ms_per_screenshot": encode_s / unique * 1000 if unique else 0.0,
        "read_ms_per_screenshot": read_s / unique * 1000 if unique else 0.0,
        "build_dataset_s": build_s, "build_samples_per_s": stats.samples / build_s,
        "dataset_bytes": stats.dataset_bytes, "screenshot_bytes": stats.screenshot_bytes,
        "dataset_over_screenshots": stats.dataset_bytes / max(stats.screenshot_bytes, 1),
        "image_bytes": stats.image_bytes,
    }
    table = Table("figure", "value", title=f"cua bench expand: {run.name} as {format_name}")
    table.add_row("pure expansion (one core)",
                  f"{figures['pure_expansion_samples_per_s']:,.0f} samples/s")
    table.add_row("resize + PNG (the format's view), once per screenshot",
                  f"{figures['resize_png_ms_per_screenshot']:.1f} ms")
    table.add_row("lossless WebP for storage, once per screenshot",
                  f"{figures['webp_ms_per_screenshot']:.1f} ms")
    table.add_row("whole build (read, images, expansion, parquet)",
                  f"{build_s:.1f} s · {figures['build_samples_per_s']:.1f} samples/s")
    table.add_row("dataset on disk / unique screenshots",
                  f"{stats.dataset_bytes / 2**20:.2f} MiB / {stats.screenshot_bytes / 2**20:.2f} "
                  f"MiB = {figures['dataset_over_screenshots']:.3f}x")
    console.print(table)
    console.print_json(data=figures)
    return figures


def bench_sft(run: Path, recipe_path: Path, steps: int, console: Console) -> dict:
    """Tokens/s and peak memory of an SFT recipe (the tiny one on the CPU) for `steps` steps,
    with a fresh model dir and dataset in a temporary folder."""
    from cua.config import load_recipe
    from cua.train import SFTRecipe, train

    with tempfile.TemporaryDirectory(prefix="cua-bench-") as tmp:
        recipe = load_recipe(recipe_path, [
            f"run={run}", f"output_dir={tmp}/out", f"model={tmp}/model", f"max_steps={steps}",
            f"save_steps={steps * 10}"], kind=SFTRecipe)
        rates: list[float] = []
        result = train(recipe, lambda e: e["tokens_per_s"] and rates.append(e["tokens_per_s"]))
    figures = {"recipe": str(recipe_path), "steps": result.steps, "tokens": result.tokens,
               "seconds": result.seconds, "tokens_per_s": result.tokens_per_s,
               "tokens_per_s_median_step": statistics.median(rates) if rates else None,
               "peak_memory_mb": result.peak_memory_mb, "first_loss": result.losses[0],
               "last_loss": result.losses[-1]}
    table = Table("figure", "value", title=f"cua bench sft: {recipe.name}")
    table.add_row("tokens/s (whole run)", f"{result.tokens_per_s:,.0f}")
    if rates:
        table.add_row("tokens/s (median step)", f"{figures['tokens_per_s_median_step']:,.0f}")
    table.add_row("peak memory", f"{result.peak_memory_mb:,.0f} MB")
    table.add_row("loss", f"{result.losses[0]:.3f} -> {result.losses[-1]:.3f} "
                  f"in {result.steps} steps")
    console.print(table)
    console.print_json(data=figures)
    return figures
