"""`cua collect` end to end on live desktops: the scripted expert, the VLM path on a real
`transformers serve`, faults (dead endpoint, killed app, SIGKILLed collector), Ray, the report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cua.collect.driver import collect, goal_units, new_run
from cua.collect.recipe import CollectRecipe
from cua.collect.store import RunStore, new_run_folder, write_atomic
from cua.collect.worker import EpisodeUnit, Worker
from cua.desktop import procs, registry
from tests.conftest import require_desktop_tools

REAL_FILES = ("xlsx/DataTableCities.xlsx", "pptx/themes.pptx", "docx/sample.docx")


def make_recipe(tmp_path: Path, **fields) -> CollectRecipe:
    base = {"name": "t", "out": str(tmp_path / "runs"),
            "content": {"generate": {"workbooks": 1, "seed": 3}}, "envs": ["calc"],
            "tasks_per_content": 1, "max_steps": 25, "workers": 1}
    return CollectRecipe.model_validate({**base, **fields})


def run(recipe: CollectRecipe) -> tuple[RunStore, dict[str, int]]:
    require_desktop_tools()
    store = new_run(recipe)
    return store, collect(store, recipe)


def test_scripted_goals_stay_within_the_recipe_families(tmp_path):
    chosen = ["calc.bold_header", "calc.sort_range", "impress.delete_slide"]
    recipe = make_recipe(tmp_path, content={"generate": {"workbooks": 3, "presentations": 2,
                                                         "documents": 1, "seed": 7}},
                         envs=["calc", "impress", "writer"], tasks_per_content=3,
                         families=chosen)
    store = new_run(recipe)
    worker = Worker(recipe)  # the scripted goal generator needs no desktop
    proposed = [t for unit in goal_units(store) for t in worker.goal(unit)[0].tasks]
    assert {t.family for t in proposed} == set(chosen)  # the memo offers none of them: no task
    assert all(t.content.startswith(("sales-", "review-")) for t in proposed)
    assert len(proposed) == 3 * 2 + 2  # two families per workbook, one per deck
    everything = Worker(make_recipe(tmp_path / "all", envs=["calc"], tasks_per_content=6))
    (unit,) = goal_units(new_run(everything.recipe))
    assert len({t.family for t in everything.goal(unit)[0].tasks}) > 2  # empty: all families


def test_unknown_family_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown template families calc\.nope \(known: "
                                         r"calc\.bold_header, .*writer\.replace_word\)"):
        make_recipe(Path("/nonexistent"), families=["calc.bold_header", "calc.nope"])
    model = {"name": "m", "base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(ValueError, match="only apply to the scripted goal generator"):
        make_recipe(Path("/nonexistent"), families=["calc.bold_header"], model=model)


def test_scripted_expert_on_real_content(tmp_path, shared_content):
    files = [str(shared_content / f) for f in REAL_FILES]
    files.append(str(shared_content / "corrupt" / "54764.xlsx"))
    store, counts = run(make_recipe(tmp_path, content={"files": files},
                                    envs=["calc", "impress", "writer"], tasks_per_content=2,
                                    workers=2, standby=True))
    manifest = store.manifest()
    assert "54764.xlsx" in manifest.rejected_content  # refused with its reason, run went on
    assert "entity" in manifest.rejected_content["54764.xlsx"]
    episodes = store.episodes()
    planned = [t.id for g in store.goals().values() for t in g.tasks]
    assert sorted(episodes) == sorted(planned) and len(planned) >= 3
    assert counts["success"] >= 3, {e.id: (e.outcome, e.error, e.evaluation) for e in episodes.values()}
    for episode in episodes.values():
        assert episode.verdict.feasible and episode.terminated
        assert episode.steps[-1].actions[-1].type == "finished"
        for step in episode.steps:
            assert store.screen_path(step.screenshot).exists()
            assert step.response.startswith("Thought:") and step.parse_error is None
    assert {e.content.name for e in episodes.values()} >= {Path(f).name for f in REAL_FILES}
    # each worker's episodes after its first were set up on its standby desktop meanwhile
    assert sum(e.set_up_ahead for e in episodes.values()) >= len(planned) - 2


def test_vlm_executor_gibberish_is_recorded_as_parse_failures(tmp_path, tiny_server):
    executor = {"name": tiny_server.model, "base_url": tiny_server.base_url, "max_tokens": 40}
    store, counts = run(make_recipe(tmp_path, roles={"executor": executor}, parse_error_budget=2))
    (episode,) = store.episodes().values()
    assert episode.outcome == "failure" and episode.truncated == "parse_errors"
    assert len(episode.steps) == 2 and all(s.parse_error for s in episode.steps)
    call = episode.steps[0].call
    assert call.error is None and call.request["model"] == tiny_server.model
    assert call.request["temperature"] == 0.0
    image = call.request["messages"][-1]["content"][0]["image_url"]["url"]
    assert store.screen_path(image.removeprefix("screen://")).exists()


def test_all_roles_on_the_tiny_model_end_cleanly(tmp_path, tiny_server):
    model = {"name": tiny_server.model, "base_url": tiny_server.base_url, "max_tokens": 40}
    store, counts = run(make_recipe(tmp_path, model=model))
    (goal,) = store.goals().values()
    assert goal.tasks == [] and goal.error and goal.call.text is not None
    assert sum(counts.values()) == 0


def test_dead_endpoint_and_killed_app_are_recorded(tmp_path):
    require_desktop_tools()
    dead = {"name": "m", "base_url": "http://127.0.0.1:9/v1", "max_retries": 1}
    store, counts = run(make_recipe(tmp_path / "a", roles={"executor": dead}))
    (episode,) = store.episodes().values()
    assert episode.truncated.startswith("model_error: APIConnectionError")
    assert episode.outcome == "error"  # as in `cua eval`: a dead endpoint is no failure of the agent
    store, counts = run(make_recipe(tmp_path / "j", roles={"judge": dead}))
    (episode,) = store.episodes().values()
    assert episode.outcome == "error" and "the judge's endpoint failed" in episode.error
    assert not episode.steps  # never rolled out

    recipe = make_recipe(tmp_path / "b", content={"generate": {"workbooks": 2, "seed": 5}})
    store = new_run(recipe)
    worker = Worker(recipe)
    act = worker.agent.act

    def kill_calc_on_step_two(context, observation, put=None, attempt=0):
        if len(context.history) == 1:
            for pid in procs.marked_pids(worker.desktops.desktop.id):
                if procs.comm(pid) == "soffice.bin":
                    os.kill(pid, signal.SIGKILL)
        return act(context, observation, put, attempt)

    worker.agent.act = kill_calc_on_step_two
    units = goal_units(store)
    try:
        results = []
        for unit in units:
            goal, _ = worker.goal(unit)
            results.append(worker.episode(EpisodeUnit(unit, goal.tasks[0]), tmp_path / unit.id)[0])
    finally:
        worker.close()
    assert [r.outcome for r in results] == ["error", "error"]
    assert all("calc died during the episode" in r.error for r in results)


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    folders = [new_run_folder(tmp_path / "runs", "r") for _ in range(3)]
    assert len(set(folders)) == 3 and all(f.is_dir() and not any(f.iterdir()) for f in folders)


def test_a_file_that_cannot_be_written_is_named_in_the_error(tmp_path):
    target = tmp_path / "report.html"
    target.mkdir()  # a folder where the file should go
    with pytest.raises(OSError, match="report.html") as raised:
        write_atomic(target, b"x")
    assert ".report.html." not in str(raised.value) and os.listdir(target) == []
    with pytest.raises(OSError, match=r"'/proc/report.html'"):  # the temp file's folder refuses
        write_atomic(Path("/proc/report.html"), b"x")


def test_sigkilled_collector_resumes_each_episode_once(tmp_path):
    require_desktop_tools()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: kill\nout: {tmp_path / 'runs'}\ncontent: {{generate: "
                      "{workbooks: 2, seed: 1}}\nenvs: [calc]\ntasks_per_content: 2\nworkers: 1\n")
    command = [sys.executable, "-m", "cua", "collect"]
    collector = subprocess.Popen([*command, "--recipe", str(recipe)], start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "runs").glob("*/episodes/*.json")):
        assert collector.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(collector.pid, signal.SIGKILL)
    collector.wait()
    (run_dir,) = (tmp_path / "runs").iterdir()
    before = {p.name: p.read_bytes() for p in (run_dir / "episodes").glob("*.json")}
    desktops = registry.records()
    deadline = time.monotonic() + 20  # its desktops shut themselves down with it
    while any(procs.alive(d.pid) for d in desktops) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert desktops and not any(procs.alive(d.pid) for d in desktops)  # the servers
    assert not any(procs.marked_pids(d.id) for d in desktops)  # X servers and apps too
    interrupted = subprocess.Popen(  # Ctrl+C once one more episode is done
        [*command, "--resume", str(run_dir)], stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # not inherited ignored
    deadline = time.monotonic() + 240
    while len(list((run_dir / "episodes").glob("*.json"))) <= len(before):
        assert interrupted.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    interrupted.send_signal(signal.SIGINT)
    _, said = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130 and f"`cua collect --resume {run_dir}` finishes" in said
    assert not {d.id for d in registry.records()} - {d.id for d in desktops}  # all closed
    done = subprocess.run([*command, "--resume", str(run_dir)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    store = RunStore(run_dir)
    planned = sorted(t.id for g in store.goals().values() for t in g.tasks)
    assert sorted(store.episodes()) == planned and len(planned) == 4
    for name, data in before.items():  # finished episodes were not run again
        assert (run_dir / "episodes" / name).read_bytes() == data
    assert not list(run_dir.rglob(".*.json.*"))  # no torn temp files left behind


def test_ray_runs_the_same_episodes(tmp_path):
    pytest.importorskip("ray", reason="needs the scale extra (pip install -e '.[scale]')")
    import ray

    try:
        store, counts = run(make_recipe(tmp_path, ray={"address": "local"}))
    finally:
        ray.shutdown()
    assert counts["success"] == 1 and len(store.episodes()) == 1


def test_view_report_renders_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    from cua.collect.view import write_report

    store, _ = run(make_recipe(tmp_path))
    page_path = write_report(store)
    steps = sum(len(e.steps) for e in store.episodes().values())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        page.goto(page_path.as_uri())
        page.eval_on_selector_all("img", "imgs => imgs.forEach(i => { i.loading = 'eager'; })")
        page.wait_for_function("[...document.images].every(i => i.complete)")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(widths) == steps and all(w == 1920 for w in widths)
        assert page.locator("svg circle").count() + page.locator("svg text").count() >= steps - 1
        assert "success" in page.inner_text("body")
        browser.close()
