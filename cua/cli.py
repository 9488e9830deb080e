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


@bench_app.command("collect")
def bench_collect_cmd(desktops: list[int] = typer.Option([1, 2, 4], help="desktop counts"),
                      episodes: int = typer.Option(9, help="episodes per desktop count"),
                      out: Path | None = typer.Option(None, help="also write the JSON here")) -> None:
    """Episodes/hour and steps/s of the scripted expert at several desktop counts."""
    from cua.bench import bench_collect
    figures = bench_collect(desktops, episodes, console)
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
    from cua.view import write_report
    console.print(f"report: {write_report(store)} (open it in a browser)")


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


# -- SFT: step-prefix expansion, datasets, training ------------------------------------------------

@app.command("expand")
def expand_cmd(
    run: Path = typer.Argument(..., help="a run folder from `cua collect`"),
    out: Path | None = typer.Option(None, help="dataset folder (default: RUN/datasets/FORMAT)"),
    format_: str | None = typer.Option(None, "--format", help="student format, e.g. uitars-1.5"),
    model: Path | None = typer.Option(None, help="student model dir: its processor bounds and "
                                      "tokenizer"),
    recipe: Path | None = typer.Option(None, help="take the expand block (and model) of an SFT "
                                       "recipe"),
    max_tokens: int | None = typer.Option(None, help="per-sample token budget"),
    history_n: int | None = typer.Option(None, help="screenshots per request"),
    outcome: list[str] = typer.Option([], help="keep these outcomes (default: success)"),
    max_steps: int | None = typer.Option(None, help="drop trajectories longer than this"),
    app_: list[str] = typer.Option([], "--app", help="keep these app families"),
    family: list[str] = typer.Option([], help="keep these task families"),
    verify: bool = typer.Option(False, help="re-render every step and compare byte for byte (an "
                                "existing dataset is verified as it is)"),
) -> None:
    """Expand a run into an SFT dataset: one sample per step, exactly as the student sees it."""
    from cua.dataset import build_dataset, verify_dataset
    from cua.expand import ExpandConfig
    from cua.store import RunStore

    config = ExpandConfig()
    if recipe is not None:
        from cua.config import load_recipe
        from cua.train import SFTRecipe
        sft = load_recipe(recipe, kind=SFTRecipe)
        config, model = sft.expand, model or (sft.model if sft.model.exists() else None)
    data = config.model_dump()
    if format_:
        data["format"] = format_
    if max_tokens is not None:
        data["max_tokens"] = max_tokens
    if history_n is not None:
        data["format_options"]["history_n"] = history_n
    for key, value in (("outcomes", outcome), ("apps", app_), ("families", family)):
        if value:
            data["filters"][key] = value
    if max_steps is not None:
        data["filters"]["max_steps"] = max_steps
    try:
        config = ExpandConfig.model_validate(data)
        store = RunStore(run)
        store.manifest()
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    out = out or run / "datasets" / config.format
    if not (verify and (out / "expand.json").exists()):
        try:
            with console.status(f"expanding {run.name} for {config.format}…"):
                manifest = build_dataset(store, out, config, model)
        except (ValueError, FileNotFoundError, FileExistsError) as exc:
            _fail(str(exc))
        stats = manifest.stats
        ratio = stats.dataset_bytes / stats.screenshot_bytes if stats.screenshot_bytes else 0
        console.print(f"{stats.samples} samples from {stats.trajectories} trajectories "
                      f"({stats.unique_images} images, {stats.dataset_bytes / 2**20:.1f} MiB, "
                      f"{ratio:.2f}x the screenshots) -> {out}", soft_wrap=True)
        for reason, count in stats.rejected.items():
            console.print(f"[dim]left out: {count} × {reason}[/dim]", soft_wrap=True)
    if verify:
        with console.status("verifying every step…"):
            report = verify_dataset(out, store)
        for mismatch in report.mismatches:
            console.print(f"[red]mismatch:[/red] {mismatch}", highlight=False, soft_wrap=True)
        console.print(f"verified {report.samples} samples over {report.steps} steps "
                      f"({report.requests} against the requests the rollout sent): "
                      f"{len(report.mismatches)} mismatches", soft_wrap=True)
        if report.mismatches:
            raise typer.Exit(1)


@app.command("sft")
def sft_cmd(
    recipe: Path = typer.Option(..., help="SFT recipe YAML, e.g. recipes/sft-tiny-cpu.yaml"),
    set_: list[str] = typer.Option([], "--set", help="override a recipe field: key.path=value"),
) -> None:
    """Fine-tune a student on an expanded run with TRL's SFTTrainer (loss on the completion)."""
    from cua.config import load_recipe
    from cua.train import SFTRecipe, train

    try:
        spec = load_recipe(recipe, set_, kind=SFTRecipe)
    except ValueError as exc:
        _fail(str(exc))

    def echo(entry: dict) -> None:
        rate = f"{entry['tokens_per_s']:.0f} tokens/s" if entry["tokens_per_s"] else "…"
        console.print(f"step {entry['step']}: loss {entry['loss']:.4f} · {rate}", highlight=False)

    try:
        result = train(spec, echo)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        _fail(str(exc))
    console.print(f"{result.steps} steps in {result.seconds:.1f} s · {result.tokens_per_s:.0f} "
                  f"tokens/s · peak memory {result.peak_memory_mb:.0f} MB · model: "
                  f"{result.model_dir}")


@bench_app.command("expand")
def bench_expand_cmd(
    run: Path = typer.Argument(..., help="a run folder from `cua collect`"),
    format_: str = typer.Option("uitars-1.5", "--format"),
    model: Path | None = typer.Option(None, help="student model dir"),
    repeat: int = typer.Option(20, help="timed passes of the pure expansion"),
    out: Path | None = typer.Option(None, help="also write the JSON figures here"),
) -> None:
    """Samples/s of the pure expansion on one core, image cost, and dataset bytes on disk
    against the unique screenshots."""
    from cua.bench import bench_expand
    figures = bench_expand(run, format_, model, repeat, console)
    if out:
        out.write_text(json.dumps(figures, indent=1))


@bench_app.command("sft")
def bench_sft_cmd(
    run: Path = typer.Argument(..., help="a run folder from `cua collect`"),
    steps: int = typer.Option(20, help="training steps"),
    recipe: Path = typer.Option(Path("recipes/sft-tiny-cpu.yaml")),
    out: Path | None = typer.Option(None, help="also write the JSON figures here"),
) -> None:
    """Tokens/s and peak memory of the tiny SFT recipe on the CPU."""
    from cua.bench import bench_sft
    figures = bench_sft(run, recipe, steps, console)
    if out:
        out.write_text(json.dumps(figures, indent=1))


# -- evaluation -------------------------------------------------------------------------------------

eval_app = typer.Typer(help="OSWorld-style evaluation on live desktops.")
app.add_typer(eval_app, name="eval")


@eval_app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    recipe: Path | None = typer.Option(None, help="eval recipe YAML (flags below override it)"),
    tasks: list[Path] = typer.Option([], help="task files or folders (OSWorld JSON)"),
    domains: str | None = typer.Option(None, help="comma-separated domains, e.g. "
                                       "libreoffice_calc,libreoffice_impress"),
    model: str | None = typer.Option(None, help="served model name, or 'scripted' for the expert"),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible endpoint, e.g. "
                                        "http://gpu-host:8000/v1"),
    agent_format: str | None = typer.Option(None, help="uitars-1.5 (default) or uitars-1.0"),
    processor: Path | None = typer.Option(None, help="student model dir: its image processor's "
                                          "pixel bounds"),
    out: Path | None = typer.Option(None, help="results folder (default: results)"),
    workers: int | None = typer.Option(None, help="desktops in parallel"),
    max_steps: int | None = typer.Option(None, help="steps per task"),
    set_: list[str] = typer.Option([], "--set", help="override a recipe field: key.path=value"),
) -> None:
    """Run an agent on task configs, score each with its evaluator, print a summary per domain.
    Running the same command again resumes (tasks with a result.txt are kept)."""
    if ctx.invoked_subcommand is not None:
        return
    from cua.config import apply_overrides, load_recipe
    from cua.evaluate.runner import EvalRecipe, run_eval, select_tasks

    flags = {"tasks": [str(t) for t in tasks] or None, "out": out and str(out),
             "agent_format": agent_format, "workers": workers, "max_steps": max_steps,
             "domains": domains.split(",") if domains else None}
    try:
        data = load_recipe(recipe, kind=EvalRecipe).model_dump(mode="json") if recipe else {}
        data.update({k: v for k, v in flags.items() if v is not None})
        if model is not None or base_url is not None:
            data["model"] = {**data.get("model", {}), **({"name": model} if model else {}),
                             **({"base_url": base_url} if base_url else {})}
        if processor is not None:
            from cua.dataset import processor_bounds
            data["agent_format_options"] = {**data.get("agent_format_options", {}),
                                            **processor_bounds(processor)}
        spec = EvalRecipe.model_validate(apply_overrides(data, set_))
        chosen, unsupported = select_tasks(spec)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    _print_unsupported(unsupported)
    if not chosen:
        _fail("no task to run")
    console.print(f"{len(chosen)} tasks · results in {spec.results_root()}")
    store, rows = run_eval(spec, chosen, console)
    table = Table(title=f"cua eval: {spec.model.name} ({spec.agent_format})")
    table.add_column("domain", no_wrap=True)
    for column in ("tasks", "done", "success", "avg steps", "avg s", "errors"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row.domain, str(row.tasks), str(row.done), f"{row.success_rate:.1%}",
                      f"{row.avg_steps:.1f}", f"{row.avg_seconds:.1f}", str(row.errors))
    console.print(table)
    from cua.view import write_report
    console.print(f"report: {write_report(store)} (open it in a browser)")


def _print_unsupported(unsupported: dict[str, str]) -> None:
    if unsupported:
        table = Table("task", "why it is not run", title=f"{len(unsupported)} tasks not run")
        for key, reason in unsupported.items():
            table.add_row(key, reason)
        console.print(table)


@eval_app.command("check")
def eval_check_cmd(
    tasks: list[Path] = typer.Argument(..., help="task files or folders"),
    out: Path = typer.Option(Path("results/check"), help="where the gold results and the "
                             "scored files go"),
    workers: int = typer.Option(1, help="desktops in parallel"),
    backend: str = typer.Option("local", help="local or docker"),
) -> None:
    """Every task must fail in its initial state and pass with its gold result."""
    from cua.evaluate.check import check_tasks
    from cua.evaluate.taskconfig import load_tasks

    chosen, unsupported = load_tasks(tasks)
    _print_unsupported(unsupported)
    if not chosen:
        _fail("no task to check")
    with console.status(f"checking {len(chosen)} tasks…") as status:
        done = []

        def progress(row) -> None:
            done.append(row)
            status.update(f"checked {len(done)}/{len(chosen)}: {row.id} "
                          f"{'ok' if row.ok else 'FAILED'}")
        rows = check_tasks(chosen, out, backend, workers, progress)
    table = Table("task", "domain", "initial", "gold", "verdict", title="cua eval check")
    for row in rows:
        score = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
        table.add_row(row.id, row.domain, score(row.initial_score),
                      f"{score(row.gold_score)} ({row.gold or 'none'})",
                      "[green]ok[/green]" if row.ok else f"[red]{row.problem}[/red]")
    console.print(table)
    failed = sum(not r.ok for r in rows) + len(unsupported)
    if failed:
        _fail(f"{failed} of {len(rows) + len(unsupported)} tasks fail the check")
    console.print(f"[green]all {len(rows)} tasks are solvable and not already solved[/green]")


@eval_app.command("make")
def eval_make_cmd(
    content: list[Path] = typer.Argument(..., help="documents or folders of them"),
    out: Path = typer.Option(..., help="task set folder (one sub-folder per domain)"),
    family: list[str] = typer.Option([], help="template families to draw from (default: all)"),
    per_file: int = typer.Option(1, help="tasks per document"),
    seed: int = typer.Option(0),
) -> None:
    """Write OSWorld task files from documents with the scripted expert's template families."""
    from cua.evaluate.make import make_tasks

    files = sorted(p for c in content for p in ([c] if c.is_file() else c.iterdir())
                   if p.is_file() and not p.name.startswith("."))
    written, skipped = make_tasks(files, out, family, per_file, seed)
    for source, reason in skipped.items():
        console.print(f"[dim]skipped {source}: {reason}[/dim]", highlight=False)
    console.print(f"{len(written)} tasks in {out}")


@app.command("loop")
def loop_cmd(
    recipe: Path = typer.Option(Path("recipes/demo-loop.yaml"), help="loop recipe YAML"),
    set_: list[str] = typer.Option([], "--set", help="override a recipe field: key.path=value"),
) -> None:
    """Collect → expand → SFT → serve → eval on held-out tasks, untrained against trained."""
    from cua.config import load_recipe
    from cua.loop import LoopRecipe, run_loop

    try:
        spec = load_recipe(recipe, set_, kind=LoopRecipe)
    except ValueError as exc:
        _fail(str(exc))
    result = run_loop(spec, console)
    table = Table("student", "held-out tasks", "success rate", title="cua loop")
    table.add_row("untrained", str(result.eval_tasks), f"{result.success_untrained:.0%}")
    table.add_row(f"trained ({result.train_steps} steps, loss {result.final_loss:.3f})",
                  str(result.eval_tasks), f"{result.success_trained:.0%}")
    console.print(table)
    console.print(f"collect {result.collect} · "
                  + " · ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()))
