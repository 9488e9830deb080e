"""The `cua` command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cua.actions import ActionError, parse_call
from cua.desktop import registry
from cua.envspec import load_env

app = typer.Typer(help="Live desktops, trajectories, SFT and evaluation for computer-use agents.",
                  no_args_is_help=True)
desktop_app = typer.Typer(help="Start, drive and stop live desktops.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print figures (never pass/fail).",
                        no_args_is_help=True)
app.add_typer(desktop_app, name="desktop")
app.add_typer(bench_app, name="bench")
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@desktop_app.command("up")
def desktop_up(
    env: Path = typer.Option(..., "--env", help="env spec YAML, e.g. envs/calc.yaml"),
    open_: list[Path] = typer.Option([], "--open", help="file(s) to open in the env's apps"),
    backend: str = typer.Option("local", help="local (embedded default) or docker"),
) -> None:
    """Start a desktop, open the files, wait until it is ready; prints the desktop id."""
    spec = load_env(env)
    desktop = registry.backend(backend, **({"owned": False} if backend == "local" else {})).start()
    try:
        report = desktop.reset(spec, list(open_))
    except Exception as exc:
        desktop.close()
        _fail(str(exc))
    console.print(f"[dim]ready in {report.seconds:.2f} s on {report.display}: "
                  f"{', '.join(w.title for w in report.windows)}[/dim]", highlight=False)
    print(desktop.id)


@desktop_app.command("shot")
def desktop_shot(desktop_id: str, out: Path = typer.Option(Path("shot.png"), "-o", "--out")) -> None:
    """Save a PNG screenshot of the desktop."""
    out.write_bytes(registry.attach(desktop_id).screenshot_png())
    console.print(str(out))


@desktop_app.command("act")
def desktop_act(desktop_id: str, actions: list[str] = typer.Argument(
        ..., help="UI-TARS calls in screen pixels, e.g. \"click(start_box='(640,300)')\"")) -> None:
    """Validate, then execute actions one after another, waiting for the screen to settle."""
    try:
        parsed = [parse_call(a) for a in actions]
        report = registry.attach(desktop_id).execute(parsed)
    except ActionError as exc:
        _fail(f"{exc} (nothing was executed)")
    for result in report.results:
        status = "[green]ok[/green]" if result.ok else f"[red]{result.error}[/red]"
        settle = result.settle
        note = f"settled in {settle.waited_s:.2f} s" if settle and settle.settled else "not settled"
        console.print(f"{result.action.type}: {status} ({result.seconds:.2f} s, {note})")
    if not all(r.ok for r in report.results):
        raise typer.Exit(1)


@desktop_app.command("down")
def desktop_down(desktop_ids: list[str] = typer.Argument(None),
                 all_: bool = typer.Option(False, "--all", help="stop every recorded desktop")) -> None:
    """Stop desktops and remove everything they started."""
    ids = [r.id for r in registry.records()] if all_ else (desktop_ids or [])
    for desktop_id in ids:
        registry.attach(desktop_id).close()
        console.print(f"stopped {desktop_id}")


@desktop_app.command("list")
def desktop_list() -> None:
    """Recorded desktops and whether they are healthy."""
    table = Table("id", "backend", "url", "healthy", "apps")
    for record in registry.records():
        health = registry.attach(record.id).health()
        table.add_row(record.id, record.backend, record.base_url, str(health.ok),
                      ", ".join(f"{a}={'up' if ok else 'down'}" for a, ok in health.apps.items()))
    console.print(table)


@desktop_app.command("windows")
def desktop_windows(desktop_id: str) -> None:
    """The desktop's top-level windows."""
    for window in registry.attach(desktop_id).windows():
        print(json.dumps(window.model_dump()))


@desktop_app.command("health")
def desktop_health(desktop_id: str) -> None:
    health = registry.attach(desktop_id).health()
    print(health.model_dump_json())
    if not health.ok:
        raise typer.Exit(1)


@bench_app.command("desktop")
def bench_desktop(
    desktops: int = typer.Option(4, help="desktops stepping concurrently"),
    steps: int = typer.Option(50, help="steps per desktop"),
    env: Path = typer.Option(Path("envs/calc.yaml"), help="env spec"),
    backend: str = typer.Option("local"),
    resets: int = typer.Option(5, help="resets per desktop"),
    out: Path | None = typer.Option(None, help="also write the JSON figures here"),
) -> None:
    """Reset, screenshot, step overhead and memory figures for concurrent desktops."""
    from cua.bench import bench_desktops, print_figures
    figures = bench_desktops(load_env(env), desktops, steps, resets, backend)
    print_figures(figures, console)
    if out:
        out.write_text(json.dumps(figures, indent=1))


@app.command("collect")
def collect_cmd(
    recipe: Path | None = typer.Option(None, help="collect recipe YAML, e.g. recipes/local-demo.yaml"),
    set_: list[str] = typer.Option([], "--set", help="override a recipe field: key.path=value"),
    resume: Path | None = typer.Option(None, help="finish the plan of an earlier run folder"),
    ray_address: str | None = typer.Option(None, help="run the episodes on a Ray cluster"),
) -> None:
    """Propose, judge and roll out tasks on live desktops; store every step."""
    from cua.collect import collect, new_run
    from cua.config import CollectRecipe, apply_overrides, load_recipe
    from cua.store import RunStore

    if (recipe is None) == (resume is None):
        _fail("give either --recipe or --resume")
    overrides = [*set_, *([f"ray.address={ray_address}"] if ray_address else [])]
    try:
        if resume is not None:
            store = RunStore(resume)
            spec = CollectRecipe.model_validate(
                apply_overrides(store.manifest().recipe, overrides))
        else:
            spec = load_recipe(recipe, overrides)
            store = new_run(spec)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        _fail(str(exc))
    console.print(f"run folder: {store.root}")
    counts = collect(store, spec, console)
    table = Table("outcome", "episodes", title=f"cua collect: {store.root.name}")
    for outcome, count in counts.items():
        table.add_row(outcome, str(count))
    console.print(table)
    console.print(f"report: cua view {store.root}")


@app.command("view")
def view_cmd(run: Path, out: Path | None = typer.Option(None, help="HTML file to write "
                                                        "(default: RUN/report.html)")) -> None:
    """Write a static HTML report of a run (screenshots with the actions drawn on them)."""
    from cua.store import RunStore
    from cua.view import write_report

    try:
        page = write_report(RunStore(run), out)
    except FileNotFoundError as exc:
        _fail(str(exc))
    console.print(f"{page}")


model_app = typer.Typer(help="Models for offline tests and demos.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("tiny")
def model_tiny(out: Path, seed: int = typer.Option(0)) -> None:
    """Build a tiny random Qwen2.5-VL (offline tokenizer, Qwen chat template) into OUT."""
    from cua.tinymodel import build_tiny_model
    console.print(str(build_tiny_model(out, seed=seed)))


@app.command("demo")
def demo(out: Path = typer.Option(Path("demo-out"), help="where files and screenshots go"),
         backend: str = typer.Option("local")) -> None:
    """Run the toolkit end to end on a generated workbook (no model, no GPU needed)."""
    from cua.demo import run_demo
    run_demo(out, backend, console)
