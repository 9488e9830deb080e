"""`cua eval` end to end on real desktops: generated task sets, the expert, a served model,
the OSWorld results layout, resume, and `cua eval check`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cua.content.documents import make_document, make_presentation
from cua.desktop.waiting import wait_until
from cua.evaluate import load_tasks
from cua.evaluate.check import check_tasks
from cua.evaluate.make import make_tasks
from cua.evaluate.runner import (
    DomainRow,
    EvalRecipe,
    combine_runs,
    run_eval,
    run_evals,
    select_tasks,
)
from cua.train.serve import answers, free_port
from tests.conftest import require_desktop_tools


@pytest.fixture
def task_set(tmp_path) -> Path:
    """Two tasks over generated documents: one Impress, one Writer."""
    docs = tmp_path / "docs"
    docs.mkdir()
    sources = [make_presentation(docs / "deck.pptx", seed=5), make_document(docs / "memo.docx",
                                                                             seed=5)]
    written, skipped = make_tasks(sources, tmp_path / "tasks", ["impress.delete_slide",
                                                               "writer.replace_word"])
    assert len(written) == 2, skipped
    return tmp_path / "tasks"


def test_make_refuses_an_unknown_family_before_reading_any_document(tmp_path):
    with pytest.raises(ValueError, match=r"unknown template families calc.nosuch \(known: "):
        make_tasks([tmp_path / "not-read.xlsx"], tmp_path / "tasks", ["calc.nosuch"])
    assert not (tmp_path / "tasks").exists()


def test_made_tasks_are_osworld_configs_that_reference_their_documents(task_set):
    tasks, unsupported = load_tasks(task_set)
    assert not unsupported and sorted(t.domain for t in tasks) == ["libreoffice_impress",
                                                                   "libreoffice_writer"]
    for task in tasks:
        raw = json.loads(task.task_file.read_text())
        assert {"id", "instruction", "config", "related_apps", "evaluator"} <= raw.keys()
        assert raw["config"][0]["type"] == "download" and raw["config"][1]["type"] == "open"
        url = raw["config"][0]["parameters"]["files"][0]["url"]
        assert not Path(url).is_absolute() and (task.task_dir / url).is_file()  # not copied
        assert raw["evaluator"]["postconfig"] and task.solution is not None


def test_check_passes_solvable_tasks_and_catches_broken_ones(task_set, tmp_path):
    require_desktop_tools()
    tasks, _ = load_tasks(task_set)
    impress = next(t for t in tasks if t.domain == "libreoffice_impress")
    # A broken copy: its evaluator passes on the untouched deck (slide count unchanged).
    raw = json.loads(impress.task_file.read_text())
    raw["id"] = "already-solved"
    raw["evaluator"]["expected"]["rules"] = {"slide_count": impress.solution.params["slide_count"]}
    broken = impress.task_file.with_name("already-solved.json")
    broken.write_text(json.dumps(raw))
    # A task whose shipped gold file is the untouched deck: the gold fails.
    raw = json.loads(impress.task_file.read_text())
    raw.update(id="bad-gold", solution=None,
               gold={"/home/user/deck.pptx": raw["config"][0]["parameters"]["files"][0]["url"]})
    impress.task_file.with_name("bad-gold.json").write_text(json.dumps(raw))
    tasks, unsupported = load_tasks(task_set)
    assert not unsupported
    rows = {r.id: r for r in check_tasks(tasks, tmp_path / "check")}
    assert rows["already-solved"].problem.startswith("the initial state already passes")
    assert rows["bad-gold"].gold == "files" and rows["bad-gold"].gold_score == 0
    assert rows["bad-gold"].problem.startswith("the gold result fails")
    for task in tasks:
        if task.id not in ("already-solved", "bad-gold"):
            row = rows[task.id]
            assert row.ok and row.initial_score == 0 and row.gold_score == 1, row
            saved = list((tmp_path / "check" / task.domain / task.id / "gold").iterdir())
            assert saved, "the gold result the solution produced is kept"


def test_expert_eval_writes_osworld_results_and_resumes(task_set, tmp_path):
    require_desktop_tools()
    recipe = EvalRecipe(tasks=[task_set], out=tmp_path / "results", standby=True)
    tasks, unsupported = select_tasks(recipe)
    assert len(tasks) == 2 and not unsupported
    store, rows = run_eval(recipe, tasks)
    root = tmp_path / "results" / "uitars-1.5" / "screenshot" / "scripted"
    assert store.root == root
    for task in tasks:
        folder = root / task.domain / task.id
        assert float((folder / "result.txt").read_text()) == 1.0
        lines = [json.loads(x) for x in (folder / "traj.jsonl").read_text().splitlines()]
        assert [x["step_num"] for x in lines] == list(range(1, len(lines) + 1))
        assert lines[-1]["done"] and all((folder / x["screenshot_file"]).is_file() for x in lines)
        episode = store.episodes()[task.id]
        assert episode.outcome == "success" and len(episode.steps) == len(lines)
    assert rows[-1].domain == "all" and rows[-1].success_rate == 1.0 and rows[-1].done == 2
    # one worker: the second task's desktop was set up while the first ran
    assert [store.episodes()[t.id].set_up_ahead for t in tasks] == [False, True]
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("result.txt")}
    run_eval(recipe, tasks)  # resume: nothing left to run
    assert {p: p.stat().st_mtime_ns for p in root.rglob("result.txt")} == stamps


def test_several_runs_report_the_mean_and_spread_per_domain(task_set, tmp_path):
    require_desktop_tools()
    recipe = EvalRecipe(tasks=[task_set], domains=["libreoffice_writer"], runs=2,
                        out=tmp_path / "results")
    tasks, _ = select_tasks(recipe)
    stores, rows = run_evals(recipe, tasks)
    assert [s.root.relative_to(tmp_path / "results").parts[0] for s in stores] == ["run-1",
                                                                                  "run-2"]
    assert all(list(s.root.rglob("result.txt")) for s in stores)
    assert rows[-1].runs == 2 and rows[-1].success_rate == 1.0 and rows[-1].success_std == 0.0


def test_runs_combine_as_mean_and_sample_deviation():
    def row(rate: float, done: int) -> DomainRow:
        return DomainRow(domain="os", tasks=4, done=done, success_rate=rate, avg_steps=3.0,
                         avg_seconds=10.0, errors=4 - done)
    (combined,) = combine_runs([[row(0.25, 4)], [row(0.75, 3)], [row(0.5, 2)]])
    assert (combined.success_rate, combined.success_std) == (0.5, 0.25)
    assert (combined.runs, combined.tasks, combined.done, combined.errors) == (3, 4, 9, 3)


def test_served_model_is_scored_and_a_dead_endpoint_is_retried(task_set, tmp_path):
    """`cua serve` (transformers) of the tiny model answers an eval; SIGINT stops it."""
    require_desktop_tools()
    pytest.importorskip("transformers", reason="needs the train extra (pip install -e '.[train]')")
    from cua.train.tinymodel import build_tiny_model

    model_dir, port = build_tiny_model(tmp_path / "tiny"), free_port()
    served = subprocess.Popen([sys.executable, "-m", "cua", "serve", str(model_dir), "--port",
                               str(port), "--log", str(tmp_path / "serve.log")],
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: served.poll() is not None or answers(f"http://127.0.0.1:{port}/health"),
                   300, 0.5, "cua serve to answer")
        assert served.poll() is None, served.stderr.read()
        model = {"name": str(model_dir), "base_url": f"http://127.0.0.1:{port}/v1",
                 "max_tokens": 40}
        recipe = EvalRecipe(tasks=[task_set], domains=["libreoffice_writer"], out=tmp_path / "r",
                            model=model, max_steps=2, parse_error_budget=2)
        tasks, _ = select_tasks(recipe)
        store, rows = run_eval(recipe, tasks)
    finally:
        served.send_signal(signal.SIGINT)
        assert served.wait(timeout=60) == 0
    assert not answers(f"http://127.0.0.1:{port}/health")
    episode = store.episodes()[tasks[0].id]
    assert episode.outcome == "failure" and episode.steps[0].call.request["model"] == str(model_dir)
    assert rows[-1].success_rate == 0 and rows[-1].done == 1
    # The same tasks against a dead endpoint: recorded as errors, no result, retried on resume.
    dead = recipe.model_copy(update={"out": tmp_path / "dead", "model": recipe.model.model_copy(
        update={"base_url": "http://127.0.0.1:9/v1", "max_retries": 0})})
    store, rows = run_eval(dead, tasks)
    assert store.episodes()[tasks[0].id].outcome == "error" and rows[-1].errors == 1
    assert not list(store.root.rglob("result.txt"))


OFFICE_SMOKE = Path(__file__).resolve().parent.parent / "tasks" / "eval" / "office-smoke"


def test_office_smoke_loads_whole_over_the_shared_documents(shared_content):
    tasks, unsupported = load_tasks(OFFICE_SMOKE)
    assert not unsupported and len(tasks) >= 30
    assert {t.domain for t in tasks} == {"libreoffice_calc", "libreoffice_impress",
                                         "libreoffice_writer"}
    assert len({t.solution.family for t in tasks}) >= 9
    for task in tasks:
        source = task.local_file(task.config[0].parameters["files"][0]["url"])
        assert source.resolve().is_relative_to(shared_content.resolve())


def test_office_smoke_sample_passes_the_check(shared_content, tmp_path):
    """One task per domain on a live desktop (the whole set: `cua eval check`)."""
    require_desktop_tools()
    tasks, _ = load_tasks(OFFICE_SMOKE)
    sample = [next(t for t in tasks if t.domain == d) for d in sorted({t.domain for t in tasks})]
    rows = check_tasks(sample, tmp_path / "check")
    assert [r.problem for r in rows] == [None] * len(sample)


def test_recipes_load():
    from cua.loop import LoopRecipe
    from cua.recipes import load_recipe

    root = OFFICE_SMOKE.parents[2] / "recipes"
    smoke = load_recipe(root / "eval-office-smoke.yaml", kind=EvalRecipe)
    assert smoke.model.temperature == 0 and smoke.model.max_tokens == 1000
    loop = load_recipe(root / "demo-loop.yaml", kind=LoopRecipe)
    assert loop.collect.exists() and loop.sft.exists()


def test_osworld_runs_drive_uitars_as_osworlds_reference_run():
    """The OSWorld eval recipe and the collection for a student evaluated there use the format's
    osworld profile; OSWorld's run protocol (a test list) defaults to it; cua's tasks do not."""
    from cua.collect.recipe import CollectRecipe
    from cua.formats import get_format
    from cua.recipes import load_recipe

    root = OFFICE_SMOKE.parents[2] / "recipes"
    for path, kind in ((root / "eval-osworld.yaml", EvalRecipe),
                       (root / "procua.yaml", CollectRecipe)):
        recipe = load_recipe(path, kind=kind)
        fmt = get_format(recipe.agent_format, **recipe.agent_format_options)
        assert fmt.profile == "osworld" and fmt.loop.attempts == 3, path
    listed = EvalRecipe(tasks=[Path("examples")], test_list=Path("test_all.json"))
    assert listed.agent_format_options == {"profile": "osworld"}
    chosen = EvalRecipe(tasks=[Path("examples")], test_list=Path("test_all.json"),
                        agent_format_options={"profile": "cua", "history_n": 3})
    assert chosen.agent_format_options == {"profile": "cua", "history_n": 3}
    assert EvalRecipe(tasks=[Path("tasks")]).agent_format_options == {}


def test_cli_eval_stops_before_any_desktop_when_the_endpoint_cannot_serve(task_set, tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from typer.testing import CliRunner

    from cua.cli import app

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        for base_url, said in [("http://127.0.0.1:9/v1", "no model server answers at"),
                               (f"http://127.0.0.1:{server.server_port}/v1",
                                "refuses the API key ($OPENAI_API_KEY")]:
            ran = CliRunner().invoke(app, ["eval", "--tasks", str(task_set), "--model", "m",
                                           "--base-url", base_url, "--out", str(tmp_path / "r")])
            assert ran.exit_code == 1 and said in ran.output, ran.output
            assert "nothing ran: the same command once it does" in ran.output
            assert not list((tmp_path / "r").rglob("eval.json"))  # no task was set up
    finally:
        server.shutdown()


def test_cli_makes_runs_and_checks_a_task_set(tmp_path):
    require_desktop_tools()
    from typer.testing import CliRunner

    from cua.cli import app

    runner = CliRunner()
    docs = tmp_path / "docs"
    docs.mkdir()
    make_document(docs / "memo.docx", seed=2)
    made = runner.invoke(app, ["eval", "make", str(docs), "--out", str(tmp_path / "tasks"),
                               "--family", "writer.replace_word"])
    assert made.exit_code == 0 and "1 tasks" in made.output, made.output
    ran = runner.invoke(app, ["eval", "--tasks", str(tmp_path / "tasks"), "--model", "scripted",
                              "--out", str(tmp_path / "results"), "--max-steps", "8"])
    assert ran.exit_code == 0, ran.output
    assert "cua eval: scripted" in ran.output
    root = tmp_path / "results" / "uitars-1.5" / "screenshot" / "scripted"
    summary = json.loads((root / "summary.json").read_text())
    assert [(r["domain"], r["success_rate"]) for r in summary] == [("libreoffice_writer", 1.0),
                                                                   ("all", 1.0)]
    assert (root / "report.html").is_file()
    checked = runner.invoke(app, ["eval", "check", str(tmp_path / "tasks"), "--out",
                                  str(tmp_path / "check")])
    assert checked.exit_code == 0 and "all 1 tasks are solvable" in checked.output, checked.output
