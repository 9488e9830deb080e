"""The `cua` command line. Results go to stdout (a table, or JSON with `--json`), progress and
errors to stderr; exit codes: 0 done, 1 some items errored, 2 usage (a bad flag or recipe),
130 interrupted."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cua.actions import ActionError, parse_call
from cua.desktop import registry
from cua.desktop.client import DesktopError
from cua.desktop.registry import BackendName
from cua.envspec import load_env

app = typer.Typer(help="Live desktops, trajectories, SFT and evaluation for computer-use agents.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
desktop_app = typer.Typer(help="Start, drive and stop live desktops.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print figures (never pass/fail).",
                        no_args_is_help=True)
model_app = typer.Typer(help="Models for offline tests and demos.", no_args_is_help=True)
eval_app = typer.Typer(help="OSWorld-style evaluation on live desktops.")
app.add_typer(desktop_app, name="desktop")
app.add_typer(bench_app, name="bench")
app.add_typer(model_app, name="model")
app.add_typer(eval_app, name="eval")
console = Console()
err = Console(stderr=True)

JSON = typer.Option(False, "--json", help="print the figures as JSON instead of a table")
OUT = typer.Option(None, "--out", help="also write the JSON figures here")
SET = typer.Option([], "--set", help="override a recipe field: key.path=value")


def main() -> None:
    """The console script: unexpected errors are reported on stderr, without a traceback
    (CUA_DEBUG=1 shows it)."""
    try:
        app(prog_name="cua")
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a person at a terminal
        if os.environ.get("CUA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        sys.exit(1)


def _check_endpoints(models: list, what_now: str) -> None:
    """Fail before any desktop is set up if a model's endpoint would fail every request."""
    from cua.collect.client import endpoint_problem

    for config in {m.base_url: m for m in models if not m.scripted}.values():
        problem = endpoint_problem(config)
        if problem:
            _fail(f"{problem}; nothing ran: {what_now}")


def _interrupted(what_now: str) -> NoReturn:
    err.print(f"[yellow]interrupted[/yellow]: {what_now}", highlight=False, soft_wrap=True)
    raise typer.Exit(130)


def _usage(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _emit(figures: dict | list, table: Table, as_json: bool, out: Path | None) -> None:
    """Figures as JSON (stdout and/or `out`) or as a table."""
    text = json.dumps(figures, indent=1)
    if out is not None:
        out.write_text(text + "\n")
    if as_json:
        print(text)
    else:
        console.print(table)


def _overrides(**flags) -> list[str]:
    """`key=value` overrides (values as JSON, which YAML reads) of the flags that were given."""
    return [f"{key.replace('__', '.')}={json.dumps(value)}" for key, value in flags.items()
            if value not in (None, [], ())]


# -- desktops ------------------------------------------------------------------------------------

def _attach(desktop_id: str):
    try:
        return registry.attach(desktop_id)
    except DesktopError as exc:
        _fail(str(exc))


@desktop_app.command("up")
def desktop_up(
    env: str = typer.Option(..., "--env", help="env name (calc, writer, calc-writer, …) or a spec "
                            "YAML"),
    open_: list[Path] = typer.Option([], "--open", help="file(s) to open in the env's apps"),
    backend: BackendName = typer.Option("local", help="local (embedded default) or docker"),
) -> None:
    """Start a desktop, open the files, wait until it is ready; prints the desktop id."""
    missing = [str(path) for path in open_ if not path.is_file()]
    if missing:
        _usage(f"no such file: {', '.join(missing)}")
    try:
        spec = load_env(env)
        desktop = registry.backend(backend, owned=False)
    except ValueError as exc:
        _usage(str(exc))
    desktop = desktop.start(network=spec.network, sudo=spec.sudo)
    try:
        report = desktop.reset(spec, list(open_))
    except Exception as exc:
        desktop.close()
        _fail(str(exc))
    err.print(f"[dim]ready in {report.seconds:.2f} s on {report.display}: "
              f"{', '.join(w.title for w in report.windows)}[/dim]", highlight=False)
    print(desktop.id)


@desktop_app.command("shot")
def desktop_shot(desktop_id: str,
                 out: Path = typer.Option(Path("shot.png"), "-o", "--out")) -> None:
    """Save a PNG screenshot of the desktop."""
    out.write_bytes(_attach(desktop_id).screenshot_png())
    console.print(str(out))


@desktop_app.command("act")
def desktop_act(desktop_id: str, actions: list[str] = typer.Argument(
        ..., help="UI-TARS calls in screen pixels, e.g. \"click(start_box='(640,300)')\"")) -> None:
    """Validate, then execute actions one after another, waiting for the screen to settle."""
    desktop = _attach(desktop_id)
    try:
        parsed = [parse_call(a) for a in actions]
        report = desktop.execute(parsed)
    except ActionError as exc:
        _usage(f"{exc} (nothing was executed)")
    for result in report.results:
        status = "[green]ok[/green]" if result.ok else f"[red]{result.error}[/red]"
        settle = result.settle
        note = f"settled in {settle.waited_s:.2f} s" if settle and settle.settled else "not settled"
        console.print(f"{result.action.type}: {status} ({result.seconds:.2f} s, {note})")
    if not all(r.ok for r in report.results):
        raise typer.Exit(1)


@desktop_app.command("down")
def desktop_down(
    desktop_ids: list[str] = typer.Argument(None),
    all_: bool = typer.Option(False, "--all", help="stop every recorded desktop"),
) -> None:
    """Stop desktops and remove everything they started."""
    if not desktop_ids and not all_:
        _usage("name the desktops to stop (see `cua desktop list`), or give --all")
    ids = [r.id for r in registry.records()] if all_ else desktop_ids
    failed = 0
    for desktop_id in ids:
        try:
            registry.attach(desktop_id).close()
        except DesktopError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            failed += 1
            continue
        console.print(f"stopped {desktop_id}")
    if failed:
        raise typer.Exit(1)


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
    for window in _attach(desktop_id).windows():
        print(json.dumps(window.model_dump()))


@desktop_app.command("health")
def desktop_health(desktop_id: str) -> None:
    health = _attach(desktop_id).health()
    print(health.model_dump_json())
    if not health.ok:
        raise typer.Exit(1)


# -- collection ----------------------------------------------------------------------------------

@app.command("collect")
def collect_cmd(
    recipe: Path | None = typer.Option(None, help="collect recipe YAML, e.g. "
                                       "recipes/local-demo.yaml"),
    set_: list[str] = SET,
    resume: Path | None = typer.Option(None, help="finish the plan of an earlier run folder"),
    ray_address: str | None = typer.Option(None, help="run the episodes on a Ray cluster"),
    as_json: bool = JSON,
) -> None:
    """Propose, judge and roll out tasks on live desktops; store every step."""
    from cua.collect.driver import collect, new_run
    from cua.collect.recipe import CollectRecipe
    from cua.collect.store import RunStore
    from cua.collect.view import write_report
    from cua.recipes import load_recipe, validate_recipe

    if (recipe is None) == (resume is None):
        _usage("give either --recipe or --resume")
    overrides = [*set_, *_overrides(ray__address=ray_address)]
    try:
        if resume is not None:
            store = RunStore(resume)
            spec = validate_recipe(CollectRecipe, store.manifest().recipe, overrides, str(resume))
        else:
            spec = load_recipe(recipe, overrides, kind=CollectRecipe)
            if spec.ray is not None:
                from cua.collect.cluster import check_address
                check_address(spec.ray.address)
            store = new_run(spec)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        _usage(str(exc))
    err.print(f"run folder: {store.root}", highlight=False)
    manifest = store.manifest()
    if not manifest.content:
        reasons = "; ".join(f"{k}: {v}" for k, v in manifest.rejected_content.items())
        _fail(f"no usable content in the run ({reasons or 'no files'})")
    from cua.train.serve import ServeError, serving
    try:
        with serving(spec, store.root) as served:
            _check_endpoints([served.role_model(r) for r in ("goal", "judge", "executor")],
                             f"`cua collect --resume {store.root}` once it does")
            counts = collect(store, served, err)
    except ServeError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _interrupted(f"the episodes done are kept; `cua collect --resume {store.root}` "
                     "finishes the plan")
    report = write_report(store)
    goal_errors = [g.error for g in store.goals().values()
                   if g.error and (g.call is None or g.call.error)]
    table = Table("outcome", "episodes", title=f"cua collect: {store.root.name}")
    for outcome, count in counts.items():
        table.add_row(outcome, str(count))
    _emit({"run": str(store.root), "outcomes": counts, "goal_errors": len(goal_errors),
           "report": str(report)}, table, as_json, None)
    err.print(f"report: {report} (open it in a browser)", highlight=False)
    if counts["error"] or goal_errors:
        first = goal_errors[0] if goal_errors else next(
            e.error for e in store.episodes().values() if e.outcome == "error")
        _fail(f"{counts['error']} episodes and {len(goal_errors)} goal proposals errored "
              f"(first: {first})")


@app.command("view")
def view_cmd(run: Path, out: Path | None = typer.Option(None, help="HTML file to write "
                                                        "(default: RUN/report.html)")) -> None:
    """Write a static HTML report of a run (screenshots with the actions drawn on them)."""
    from cua.collect.store import RunStore
    from cua.collect.view import write_report

    try:
        page = write_report(RunStore(run), out)
    except FileNotFoundError as exc:
        _usage(str(exc))
    console.print(f"{page}")


@model_app.command("tiny")
def model_tiny(out: Path, seed: int = typer.Option(0)) -> None:
    """Build a tiny random Qwen2.5-VL (offline tokenizer, Qwen chat template) into OUT."""
    from cua.train.tinymodel import build_tiny_model
    console.print(str(build_tiny_model(out, seed=seed)))


# -- SFT: step-prefix expansion, datasets, training ----------------------------------------------

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
    as_json: bool = JSON,
) -> None:
    """Expand a run into an SFT dataset: one sample per step, exactly as the student sees it."""
    from cua.collect.store import RunStore
    from cua.data.dataset import build_dataset, verify_dataset
    from cua.data.expand import ExpandConfig
    from cua.recipes import load_recipe, validate_recipe

    data: dict = {}
    overrides = _overrides(format=format_, max_tokens=max_tokens,
                           format_options__history_n=history_n, filters__outcomes=outcome,
                           filters__apps=app_, filters__families=family,
                           filters__max_steps=max_steps)
    try:
        if recipe is not None:
            from cua.train.sft import SFTRecipe
            sft = load_recipe(recipe, kind=SFTRecipe)
            data, model = sft.expand.model_dump(), model or (sft.model if sft.model.exists()
                                                             else None)
        config = validate_recipe(ExpandConfig, data, overrides, "expand options")
        store = RunStore(run)
        store.manifest()
    except (ValueError, FileNotFoundError) as exc:
        _usage(str(exc))
    out = out or run / "datasets" / config.format
    figures: dict = {"dataset": str(out)}
    table = Table("figure", "value", title=f"cua expand: {run.name} as {config.format}")
    if not (verify and (out / "expand.json").exists()):
        try:
            with err.status(f"expanding {run.name} for {config.format}…"):
                manifest = build_dataset(store, out, config, model)
        except (ValueError, FileNotFoundError, FileExistsError) as exc:
            _fail(str(exc))
        stats = manifest.stats
        ratio = stats.dataset_bytes / stats.screenshot_bytes if stats.screenshot_bytes else 0
        figures["stats"] = stats.model_dump()
        table.add_row("samples", f"{stats.samples} from {stats.trajectories} trajectories")
        table.add_row("images", f"{stats.unique_images} ({stats.dataset_bytes / 2**20:.1f} MiB, "
                      f"{ratio:.2f}x the screenshots)")
        for reason, count in stats.rejected.items():
            table.add_row("left out", f"{count} × {reason}")
    if verify:
        with err.status("verifying every step…"):
            report = verify_dataset(out, store)
        figures["verify"] = report.model_dump()
        for mismatch in report.mismatches:
            err.print(f"[red]mismatch:[/red] {mismatch}", highlight=False, soft_wrap=True)
        table.add_row("verified", f"{report.samples} samples over {report.steps} steps "
                      f"({report.requests} against the requests the rollout sent): "
                      f"{len(report.mismatches)} mismatches")
    _emit(figures, table, as_json, None)
    if verify and report.mismatches:
        raise typer.Exit(1)


@app.command("sft")
def sft_cmd(
    recipe: Path = typer.Option(..., help="SFT recipe YAML, e.g. recipes/sft-tiny-cpu.yaml"),
    set_: list[str] = SET,
    as_json: bool = JSON,
) -> None:
    """Fine-tune a student on an expanded run with TRL's SFTTrainer (loss on the completion)."""
    from cua.recipes import load_recipe
    from cua.train.sft import SFTRecipe, train

    try:
        spec = load_recipe(recipe, set_, kind=SFTRecipe)
    except ValueError as exc:
        _usage(str(exc))

    def echo(entry: dict) -> None:
        rate = f"{entry['tokens_per_s']:.0f} tokens/s" if entry["tokens_per_s"] else "…"
        err.print(f"step {entry['step']}: loss {entry['loss']:.4f} · {rate}", highlight=False)

    try:
        result = train(spec, echo)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _interrupted(f"`--set resume=true` goes on from the last checkpoint in {spec.output_dir} "
                     f"(one every {spec.save_steps} steps)")
    table = Table("figure", "value", title=f"cua sft: {spec.name}")
    table.add_row("steps", f"{result.steps} in {result.seconds:.1f} s")
    table.add_row("tokens/s", f"{result.tokens_per_s:.0f}")
    table.add_row("peak memory", f"{result.peak_memory_mb:.0f} MB")
    table.add_row("model", result.model_dir)
    _emit(result.model_dump(), table, as_json, None)


# -- evaluation ----------------------------------------------------------------------------------

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
    runs: int | None = typer.Option(None, help="run every task N times: mean ± std per domain"),
    test_list: Path | None = typer.Option(None, help="OSWorld's test_all.json, test_small.json, "
                                          "…: --tasks is then its examples/ folder"),
    cache: Path | None = typer.Option(None, help="OSWorld's file cache (default "
                                      "~/.cache/cua/osworld); one holding the files runs offline"),
    backend: BackendName | None = typer.Option(None, help="local (default) or docker"),
    allow_host_commands: bool = typer.Option(False, help="local backend: run the commands "
                                             "OSWorld tasks send on this host"),
    dry_run: bool = typer.Option(False, help="only say, per domain, which tasks would run"),
    set_: list[str] = SET,
    as_json: bool = JSON,
) -> None:
    """Run an agent on task configs, score each with its evaluator, print a summary per domain.
    OSWorld's own tasks are set up and scored by OSWorld's desktop-env, cua's task families by
    cua. Running the same command again resumes (tasks with a result.txt are kept)."""
    if ctx.invoked_subcommand is not None:
        return
    from cua.evaluate.runner import EvalRecipe, run_evals, select_tasks
    from cua.recipes import read_recipe, validate_recipe

    try:
        data = read_recipe(recipe) if recipe else {}
        bounds = {}
        if processor is not None:
            from cua.formats import model_bounds
            name = agent_format or data.get("agent_format", "uitars-1.5")
            bounds = {f"agent_format_options__{k}": v
                      for k, v in model_bounds(name, processor).items()}
        flags = _overrides(tasks=[str(t) for t in tasks], out=out and str(out),
                           agent_format=agent_format, workers=workers, max_steps=max_steps,
                           domains=domains.split(",") if domains else None, model__name=model,
                           model__base_url=base_url, test_list=test_list and str(test_list),
                           cache=cache and str(cache), backend=backend, runs=runs,
                           allow_host_commands=allow_host_commands or None, **bounds)
        if dry_run and model is None and "model" not in data:
            flags.append("model.name=scripted")  # a dry run needs no agent
        spec = validate_recipe(EvalRecipe, data, [*flags, *set_], str(recipe or "cua eval"))
        if dry_run:
            _print_dry_run(spec, as_json)
            return
        chosen, unsupported = select_tasks(spec)
    except (ValueError, OSError) as exc:
        _usage(str(exc))
    _print_unsupported(unsupported)
    if not chosen:
        _usage("no task to run")
    from cua.train.serve import ServeError, serving
    try:
        with serving(spec, spec.out.expanduser()) as spec:
            _check_endpoints([spec.model], "the same command once it does")
            where = (spec.results_root() if spec.runs == 1 else
                     f"{spec.out}/run-1 … run-{spec.runs}, each with its {spec.agent_format}/…")
            err.print(f"{len(chosen)} tasks · results in {where}", highlight=False)
            stores, rows = run_evals(spec, chosen, err)
    except ServeError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _interrupted("the tasks done are kept; the same command again runs the others")
    runs = f", {spec.runs} runs" if spec.runs > 1 else ""
    table = Table(title=f"cua eval: {spec.model.name} ({spec.agent_format}{runs})")
    table.add_column("domain", no_wrap=True)
    for column in ("tasks", "done", "success", "avg steps", "avg s", "errors"):
        table.add_column(column, justify="right")
    for row in rows:
        spread = f" ± {row.success_std:.1%}" if spec.runs > 1 else ""
        table.add_row(row.domain, str(row.tasks), str(row.done),
                      f"{row.success_rate:.1%}{spread}", f"{row.avg_steps:.1f}",
                      f"{row.avg_seconds:.1f}", str(row.errors))
    _emit([r.model_dump() for r in rows], table, as_json, None)
    from cua.collect.view import write_report
    for store in stores:
        err.print(f"report: {write_report(store)} (open it in a browser)", highlight=False)
    if rows[-1].errors:
        _fail(f"{rows[-1].errors} tasks errored (see their eval.json); running the same command "
              "again retries them")


def _print_dry_run(spec, as_json: bool) -> None:
    from cua.evaluate.runner import dry_run

    report = dry_run(spec)
    table = Table("domain", "runnable", "not", "why not (most common)", title="cua eval --dry-run")
    for domain, row in report.items():
        reasons = Counter(r for problems in row.not_runnable.values() for r in problems)
        table.add_row(domain, str(row.runnable), str(len(row.not_runnable)),
                      "; ".join(f"{reason} ({n})" for reason, n in reasons.most_common(2)))
    total = sum(row.runnable for row in report.values())
    table.add_row("all", str(total), str(sum(len(r.not_runnable) for r in report.values())), "")
    _emit({d: r.model_dump() for d, r in report.items()}, table, as_json, None)


def _print_unsupported(unsupported: dict[str, str]) -> None:
    if unsupported:
        table = Table("task", "why it is not run", title=f"{len(unsupported)} tasks not run")
        for key, reason in unsupported.items():
            table.add_row(key, reason)
        err.print(table)


@eval_app.command("check")
def eval_check_cmd(
    tasks: list[Path] = typer.Argument(..., help="task files or folders"),
    out: Path = typer.Option(Path("results/check"), help="where the gold results and the "
                             "scored files go"),
    workers: int = typer.Option(1, min=1, help="desktops in parallel"),
    backend: BackendName = typer.Option("local", help="local or docker"),
    as_json: bool = JSON,
) -> None:
    """Every task must fail in its initial state and pass with its gold result."""
    from cua.evaluate.check import check_tasks
    from cua.evaluate.taskconfig import load_tasks

    chosen, unsupported = load_tasks(tasks)
    _print_unsupported(unsupported)
    if not chosen:
        _usage("no task to check")
    with err.status(f"checking {len(chosen)} tasks…") as status:
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
    _emit([{**r.model_dump(), "ok": r.ok} for r in rows], table, as_json, None)
    failed = sum(not r.ok for r in rows) + len(unsupported)
    if failed:
        _fail(f"{failed} of {len(rows) + len(unsupported)} tasks fail the check")
    err.print(f"[green]all {len(rows)} tasks are solvable and not already solved[/green]")


@eval_app.command("make")
def eval_make_cmd(
    content: list[Path] = typer.Argument(..., help="documents or folders of them"),
    out: Path = typer.Option(..., help="task set folder (one sub-folder per domain)"),
    family: list[str] = typer.Option([], help="template families to draw from (default: all)"),
    per_file: int = typer.Option(1, min=1, help="tasks per document"),
    seed: int = typer.Option(0),
) -> None:
    """Write OSWorld task files from documents with the scripted expert's template families."""
    from cua.evaluate.make import make_tasks

    missing = [str(c) for c in content if not c.exists()]
    if missing:
        _usage(f"no such file or folder: {', '.join(missing)}")
    files = sorted(p for c in content for p in ([c] if c.is_file() else c.iterdir())
                   if p.is_file() and not p.name.startswith("."))
    try:
        written, skipped = make_tasks(files, out, family, per_file, seed)
    except ValueError as exc:
        _usage(str(exc))
    for source, reason in skipped.items():
        err.print(f"[dim]skipped {source}: {reason}[/dim]", highlight=False)
    console.print(f"{len(written)} tasks in {out}")
    if not written:
        raise typer.Exit(1)


@eval_app.command("install-scorer")
def eval_install_scorer_cmd(
    dir_: Path | None = typer.Option(None, "--dir", help="where the venv goes (default: "
                                     "$CUA_OSWORLD_VENV or ~/.local/share/cua/osworld-venv)"),
) -> None:
    """Make the venv where OSWorld's own desktop-env scores OSWorld tasks (pinned, separate from
    cua's; about 2 minutes and 6.5 GB the first time, a no-op once done)."""
    from cua.evaluate.osworld import scorer_env

    directory = dir_ or scorer_env.venv_dir()
    try:
        with err.status(f"installing the OSWorld scorer venv in {directory} (pip's output: "
                        f"{directory / 'install.log'})…"):
            stamp = scorer_env.install(directory)
    except ValueError as exc:  # a --dir that is no place for a venv (scorer_env.check_target)
        _usage(str(exc))
    except scorer_env.ScorerEnvError as exc:
        _fail(str(exc))
    versions = ", ".join(f"{k} {v}" for k, v in stamp["versions"].items())
    console.print(f"OSWorld scorer venv ready in {directory}: {versions}", highlight=False,
                  soft_wrap=True)


@app.command("serve")
def serve_cmd(
    model_dir: Path = typer.Argument(..., help="a local model dir"),
    engine: str = typer.Option("transformers", help="transformers (CPU) or vllm (GPU hosts)"),
    name: str | None = typer.Option(None, help="the model name requests use (vllm; default: "
                                    "the dir's name; transformers serves it as its path)"),
    agent_format: str = typer.Option("uitars-1.5", help="the format its requests come in"),
    set_: list[str] = typer.Option([], "--set", help="a format option: key=value "
                                   "(history_n=3, …)"),
    host: str = typer.Option("127.0.0.1", help="0.0.0.0 to serve other hosts"),
    port: int | None = typer.Option(None, help="default: a free port"),
    max_tokens: int = typer.Option(1000, min=1, help="the longest reply (vllm: model length)"),
    tensor_parallel: int | None = typer.Option(None, min=1, help="vllm: GPUs (default: those "
                                               "present, fitted to the model's heads)"),
    log: Path = typer.Option(Path("serve.log"), help="the engine's log"),
    print_command: bool = typer.Option(False, help="print the engine's command line and exit"),
) -> None:
    """Serve a model dir as an OpenAI-compatible endpoint with the flags the agent format needs,
    until interrupted."""
    import signal as signals

    from cua.formats import get_format
    from cua.recipes import ServeConfig, apply_overrides
    from cua.train.serve import TOOLS, ModelServer, ServeError, check_model_dir

    if engine not in TOOLS:
        _usage(f"--engine {engine!r}: choose {' or '.join(TOOLS)}")
    try:
        check_model_dir(model_dir)
    except ServeError as exc:
        _usage(str(exc))
    try:
        config = ServeConfig(engine=engine, model=model_dir, host=host, port=port,
                             tensor_parallel=tensor_parallel)
        fmt = get_format(agent_format, **apply_overrides({}, set_))
        server = ModelServer(config, log, name, fmt, max_tokens)
    except (ValueError, TypeError, OSError) as exc:
        _usage(str(exc))
    except ServeError as exc:
        _fail(str(exc))
    if print_command:
        print(server.command_line())
        return
    signals.signal(signals.SIGTERM, lambda *_: sys.exit(0))
    try:
        with server:
            err.print(f"serving {server.model!r} at {server.base_url} (log: {log}); Ctrl+C "
                      "stops it", highlight=False)
            while server.proc.poll() is None:
                time.sleep(1)
            _fail(f"{engine} stopped (exit {server.proc.returncode}); see {log}")
    except ServeError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command("loop")
def loop_cmd(
    recipe: Path = typer.Option(Path("recipes/demo-loop.yaml"), help="loop recipe YAML"),
    set_: list[str] = SET,
    as_json: bool = JSON,
) -> None:
    """Collect → expand → SFT → serve → eval on held-out tasks, untrained against trained."""
    from cua.loop import LoopRecipe, run_loop
    from cua.recipes import load_recipe

    try:
        spec = load_recipe(recipe, set_, kind=LoopRecipe)
    except ValueError as exc:
        _usage(str(exc))
    result = run_loop(spec, err)
    table = Table("student", "held-out tasks", "success rate", title="cua loop",
                  caption=f"collect {result.collect} · "
                  + " · ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()))
    table.add_row("untrained", str(result.eval_tasks), f"{result.success_untrained:.0%}")
    table.add_row(f"trained ({result.train_steps} steps, loss {result.final_loss:.3f})",
                  str(result.eval_tasks), f"{result.success_trained:.0%}")
    _emit(result.model_dump(), table, as_json, None)


# -- benchmarks ----------------------------------------------------------------------------------

@bench_app.command("desktop")
def bench_desktop(
    desktops: int = typer.Option(4, min=1, help="desktops stepping concurrently"),
    steps: int = typer.Option(50, min=1, help="steps per desktop"),
    env: str = typer.Option("calc", help="env name or spec YAML"),
    backend: BackendName = typer.Option("local"),
    resets: int = typer.Option(5, min=0, help="resets per desktop"),
    recheck: float = typer.Option(0.0, min=0.0, help="after each step, wait this long and count "
                                  "the steps whose screen has changed since (stale screens)"),
    as_json: bool = JSON, out: Path | None = OUT,
) -> None:
    """Reset, screenshot, step overhead and memory figures for concurrent desktops."""
    from cua.bench import bench_desktops, desktop_table

    try:
        spec = load_env(env)
    except ValueError as exc:
        _usage(str(exc))
    figures = bench_desktops(spec, desktops, steps, resets, backend, recheck)
    _emit(figures, desktop_table(figures), as_json, out)
    for error in figures["errors"]:
        err.print(f"[red]{error}[/red]", highlight=False)
    if figures["errors"]:
        raise typer.Exit(1)


@bench_app.command("osworld")
def bench_osworld_cmd(
    tasks: Path = typer.Option(..., help="OSWorld's examples/ folder (with --test-list) or task "
                               "files' folder"),
    test_list: Path | None = typer.Option(None, help="test_all.json, test_small.json, …"),
    domains: str | None = typer.Option(None, help="comma-separated domains"),
    backend: BackendName = typer.Option("docker", help="docker (task commands run in its "
                                        "container) or local"),
    allow_host_commands: bool = typer.Option(False, help="local backend: run the commands "
                                             "OSWorld tasks send on this host"),
    stand_ins: bool = typer.Option(False, help="generate the files tasks download (no network "
                                   "or cache needed; into a temporary cache)"),
    cache: Path | None = typer.Option(None, help="OSWorld's file cache, without --stand-ins "
                                      "(default ~/.cache/cua/osworld)"),
    limit: int | None = typer.Option(None, min=1, help="at most this many tasks"),
    scorer_log: Path = typer.Option(Path(tempfile.gettempdir()) / "cua-bench-osworld-scorer.log",
                                    help="where desktop-env's messages go (overwritten)"),
    as_json: bool = JSON, out: Path | None = OUT,
) -> None:
    """Reset-to-ready per OSWorld task (reset, OSWorld's setup, until the desktop is ready)
    and the untouched state's score, which must fail."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from cua.bench import bench_osworld, osworld_table
    from cua.evaluate.runner import EvalRecipe

    try:
        recipe = EvalRecipe(tasks=[tasks], test_list=test_list, backend=backend,
                            domains=domains.split(",") if domains else [],
                            allow_host_commands=allow_host_commands, model={"name": "scripted"},
                            **({"cache": cache} if cache else {}))
    except ValidationError as exc:
        _usage(str(exc))
    if not tasks.is_dir() or (test_list is not None and not test_list.is_file()):
        _usage(f"no such folder or test list: {tasks} {test_list or ''}")
    if test_list is not None:
        from cua.evaluate.osworld.listing import listed_task_files
        try:
            listed_task_files(tasks, test_list, recipe.domains)
        except ValueError as exc:
            _usage(str(exc))
    with Progress(TextColumn("[bold]OSWorld tasks"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), console=err) as progress:
        bar = progress.add_task("", total=None)

        def on_task(row: dict, done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total,
                            description=f"{row['id'][:8]} {row['outcome']}")
        scorer_log.write_text("")
        figures = bench_osworld(recipe, stand_ins, limit, scorer_log, on_task)
    _emit(figures, osworld_table(figures), as_json, out)
    err.print(f"desktop-env's messages: {scorer_log}", highlight=False)
    for row in figures["tasks"]:
        if row["outcome"] != "failure":
            err.print(f"{row['domain']}/{row['id']}: {row['outcome']}: "
                      f"{row['error'] or 'the untouched state already passes'}", highlight=False)
    if any(row["outcome"] == "error" for row in figures["tasks"]):
        raise typer.Exit(1)


@bench_app.command("collect")
def bench_collect_cmd(desktops: list[int] = typer.Option([1, 2, 4], min=1, help="desktop counts"),
                      episodes: int = typer.Option(9, min=1, help="episodes per desktop count"),
                      standby: bool = typer.Option(False, help="a standby desktop per worker, "
                                                   "set up for its next episode meanwhile"),
                      recheck: float = typer.Option(
                          0.0, min=0.0, max=5.0, help="after each action settles, wait this long "
                          "and count the steps whose screen changed since (stale screens; the "
                          "waits slow the run)"),
                      as_json: bool = JSON, out: Path | None = OUT) -> None:
    """Episodes/hour and steps/s of the scripted expert at several desktop counts."""
    from cua.bench import bench_collect, collect_table

    figures = bench_collect(desktops, episodes, err, standby, recheck)
    _emit(figures, collect_table(figures), as_json, out)


@bench_app.command("expand")
def bench_expand_cmd(
    run: Path = typer.Argument(..., help="a run folder from `cua collect`"),
    format_: str = typer.Option("uitars-1.5", "--format"),
    model: Path | None = typer.Option(None, help="student model dir"),
    repeat: int = typer.Option(20, min=1, help="timed passes of the pure expansion"),
    as_json: bool = JSON, out: Path | None = OUT,
) -> None:
    """Samples/s of the pure expansion on one core, image cost, and dataset bytes on disk
    against the unique screenshots."""
    from cua.bench import bench_expand, expand_table

    try:
        figures = bench_expand(run, format_, model, repeat)
    except (ValueError, FileNotFoundError) as exc:
        _usage(str(exc))
    _emit(figures, expand_table(figures), as_json, out)


@bench_app.command("sft")
def bench_sft_cmd(
    run: Path = typer.Argument(..., help="a run folder from `cua collect`"),
    steps: int = typer.Option(20, min=1, help="training steps"),
    recipe: Path = typer.Option(Path("recipes/sft-tiny-cpu.yaml")),
    as_json: bool = JSON, out: Path | None = OUT,
) -> None:
    """Tokens/s and peak memory of the tiny SFT recipe on the CPU."""
    from cua.bench import bench_sft, sft_table

    try:
        figures = bench_sft(run, recipe, steps)
    except (ValueError, FileNotFoundError) as exc:
        _usage(str(exc))
    _emit(figures, sft_table(figures), as_json, out)
