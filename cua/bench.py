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
from cua.store import write_atomic

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
    desktops running at once (the same plan each time), and where a step's time goes."""
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
            records = list(store.episodes().values())
            steps = [s for e in records for s in e.steps]
            figures[str(count)] = {
                "episodes": len(records), "steps": len(steps), "wall_s": wall,
                "episodes_per_hour": len(records) / wall * 3600, "steps_per_s": len(steps) / wall,
                "outcomes": outcomes, "step_s": _step_shares(steps, store, Path(tmp) / "persist")}
    table = Table("desktops", "episodes", "episodes/hour", "steps/s", "step p50 (no model)",
                  "act", "settle", "screenshot", "model", "persist",
                  title="cua bench collect: scripted expert on Calc")
    for count, row in figures.items():
        share = row["step_s"]["share"]
        table.add_row(count, str(row["episodes"]), f"{row['episodes_per_hour']:.0f}",
                      f"{row['steps_per_s']:.2f}", f"{row['step_s']['overhead_p50']:.3f} s",
                      *(f"{share[k]:.0%}" for k in ("act", "settle", "screenshot", "model",
                                                    "persist")))
    console.print(table)
    console.print_json(data=figures)
    return figures


def _step_shares(steps, store, scratch: Path) -> dict:
    """Per step: act (execute minus settling), settle, screenshot (observe), model, persist
    (writing its screenshot and record again into a scratch store)."""
    from cua.store import RunStore

    copy = RunStore(scratch / store.root.name)
    parts = {"act": [], "settle": [], "screenshot": [], "model": [], "persist": []}
    for step in steps:
        settle = sum(r.settle.waited_s for r in step.results if r.settle)
        parts["settle"].append(settle)
        parts["act"].append(step.seconds.get("execute", 0.0) - settle)
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
