"""OSWorld's own tasks on cua desktops, end to end: a task file from `../shared/osworld`, its
documents as stand-ins in the cache (laid out as desktop-env's), setup by desktop-env's
SetupController, scoring by desktop-env's getters and metrics. The initial state must fail; a
scripted solution of a few actions must pass. Chrome's tasks run Chromium as `google-chrome`, their
tabs set up and read over the DevTools protocol (Playwright in the scorer), which a docker
desktop offers through the bridge."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from cua.actions import Click, Hotkey, Type
from cua.collect.agents import RoleFactory
from cua.desktop import registry
from cua.evaluate.osworld.cache import cache_entries, task_cache
from cua.evaluate.osworld.harness import OSWorldHarness, task_env
from cua.evaluate.osworld.scorer import Scorer
from cua.evaluate.runner import EvalRecipe, EvalWorker
from cua.evaluate.taskconfig import TaskConfig
from tests.conftest import require_desktop_tools
from tests.test_osworld_scorer import scorer_venv_or_skip

OSWORLD = Path(__file__).resolve().parents[2] / "shared" / "osworld" / "examples"
FILL_BLANKS = "libreoffice_calc/01b269ae-2111-4a07-81fd-3fcd711993b0.json"  # fill B1:E30 down
PROFILE_NAME = "chrome/2ae9ba84-3a0d-4d4c-8338-3a1478dc5fe3.json"  # name Chrome's profile Thomas
REOPEN_TAB = "chrome/06fe7178-4491-4589-810f-2e2bc9502122.json"  # bring back the closed tab
PROFILE_NAME_FIELD = (815, 274)  # chrome://settings/manageProfile at 1920x1080


def shared_task(name: str) -> TaskConfig:
    path = OSWORLD / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is beside the checkout only)")
    task = TaskConfig.model_validate_json(path.read_text())
    task._task_file = path
    return task


def blanks_workbook(path: Path, filled: bool) -> Path:
    """A stand-in for the task's ledger: B3 is blank until filled with the value above it."""
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [["Name", "Level", "Score"], ["Ann", "A", 3], ["Bob", "A" if filled else None, 4],
                ["Cid", "B", 5]]:
        sheet.append(row)
    book.save(path)
    return path


def stand_ins(task: TaskConfig, cache: Path, filled: bool) -> None:
    """The task's download and its gold file, under the names desktop-env looks up."""
    download, gold = cache_entries(task)
    folder = task_cache(cache, task)
    folder.mkdir(parents=True, exist_ok=True)
    blanks_workbook(folder / download.name, filled)
    blanks_workbook(folder / gold.name, filled=True)


@pytest.fixture
def commands_desktop(backend_name):
    """A desktop that runs the commands OSWorld's steps send (its postconfig saves with
    pyautogui): a container, or a local desktop told it may."""
    options = {"allow_commands": True} if backend_name == "local" else {}
    with registry.backend(backend_name, **options).start() as desktop:
        yield desktop


@pytest.fixture(scope="module")
def scorer():
    scorer_venv_or_skip()
    with Scorer() as scorer:
        yield scorer


def test_initial_state_fails_and_a_scripted_solution_passes(scorer, commands_desktop, tmp_path):
    task = shared_task(FILL_BLANKS)
    stand_ins(task, tmp_path / "cache", filled=False)
    harness, desktop = OSWorldHarness(task, scorer, tmp_path / "cache"), commands_desktop
    log = harness.setup(desktop, task_env())
    assert log[-2:] == ["setup download", "setup open"]
    assert [w.title for w in desktop.windows()] == ["Student_Level_Fill_Blank.xlsx - LibreOffice Calc"]
    _, initial = harness.score(desktop, tmp_path / "initial", last_action=None)
    assert initial.score == 0 and initial.details[0].func == "compare_table"
    assert (tmp_path / "initial" / "Student_Level_Fill_Blank.xlsx").is_file()

    harness.setup(desktop, task_env())
    report = desktop.execute([Hotkey(keys=["ctrl", "home"]), Hotkey(keys=["right"]),
                              Hotkey(keys=["down"]), Hotkey(keys=["down"]), Type(content="A\n"),
                              Hotkey(keys=["ctrl", "s"]), Hotkey(keys=["enter"])])
    assert all(r.ok for r in report.results)
    _, solved = harness.score(desktop, tmp_path / "solved", last_action="DONE")
    assert solved.score == 1


def test_eval_runs_osworld_tasks_with_a_missing_file_as_that_tasks_error(tmp_path):
    require_desktop_tools()
    scorer_venv_or_skip()
    task = shared_task(FILL_BLANKS)
    recipe = EvalRecipe(tasks=[OSWORLD], model={"name": "scripted"}, cache=tmp_path / "cache",
                        allow_host_commands=True)
    worker = EvalWorker(recipe, RoleFactory([recipe.model]))
    try:
        missing = worker.attempt(task, tmp_path / "missing", act=False).record
        assert missing.outcome == "error" and "huggingface.co" in missing.error
        stand_ins(task, tmp_path / "cache", filled=True)
        done = worker.attempt(task, tmp_path / "done", act=False).record
        assert done.outcome == "success", done.error
        assert done.setup_log[0].startswith("cached ") and "sha256" in done.setup_log[0]
    finally:
        worker.close()


def test_chrome_task_reads_the_profile_chrome_wrote(scorer, commands_desktop, tmp_path):
    """Setup starts `google-chrome` and socat; the evaluator's postconfig `pkill chrome`s it (so
    Chromium writes its Preferences) and starts it again; the getter reads the profile name."""
    task = shared_task(PROFILE_NAME)
    harness, desktop = OSWorldHarness(task, scorer, tmp_path / "cache"), commands_desktop
    harness.setup(desktop, task_env())
    assert any(w.title.endswith(" - Chromium") for w in desktop.windows())
    _, initial = harness.score(desktop, tmp_path / "initial", last_action=None)
    assert initial.score == 0 and initial.details[0].func == "exact_match"

    harness.setup(desktop, task_env())  # a fresh profile: the home was emptied
    report = desktop.execute([Hotkey(keys=["ctrl", "l"]),
                              Type(content="chrome://settings/manageProfile\n"),
                              Click(x=PROFILE_NAME_FIELD[0], y=PROFILE_NAME_FIELD[1]),
                              Hotkey(keys=["ctrl", "a"]), Type(content="Thomas\t")])
    assert all(r.ok for r in report.results)
    _, solved = harness.score(desktop, tmp_path / "solved", last_action="DONE")
    assert solved.score == 1


def test_chrome_tabs_over_the_devtools_protocol(scorer, commands_desktop, tmp_path):
    """chrome_open_tabs, chrome_close_tabs and the open_tabs_info getter reach Chromium's
    DevTools port in the desktop (here without a network: the pages are error pages, and the
    tabs are not the three the task wants)."""
    task = shared_task(REOPEN_TAB)
    harness, desktop = OSWorldHarness(task, scorer, tmp_path / "cache"), commands_desktop
    log = harness.setup(desktop, task_env())
    assert log[-2:] == ["setup chrome_open_tabs", "setup chrome_close_tabs"]
    assert len([w for w in desktop.windows() if w.title.endswith(" - Chromium")]) == 1
    _, initial = harness.score(desktop, tmp_path / "initial", last_action=None)
    assert initial.score == 0 and initial.details[0].func == "is_expected_tabs"
    assert initial.details[0].error is None
