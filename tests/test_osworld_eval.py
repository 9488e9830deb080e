"""OSWorld's own tasks on cua desktops, end to end: a task file from `../shared/osworld`, its
documents as stand-ins in the cache (laid out as desktop-env's), setup by desktop-env's
SetupController, scoring by desktop-env's getters and metrics. The initial state must fail; a
scripted solution of a few actions must pass. Chrome's tasks run Chromium as `google-chrome`, their
tabs set up and read over the DevTools protocol (Playwright in the scorer), which a docker
desktop offers through the bridge."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import openpyxl
import pytest
from lxml import etree

from cua.actions import Click, Hotkey, Type
from cua.collect.agents import RoleFactory
from cua.desktop import atspi, registry
from cua.evaluate.osworld import scorer_env
from cua.evaluate.osworld.bridge import Bridge
from cua.evaluate.osworld.cache import cache_entries, task_cache
from cua.evaluate.osworld.harness import OSWorldHarness, task_env
from cua.evaluate.osworld.scorer import Scorer
from cua.evaluate.osworld.stand_ins import write_stand_ins
from cua.evaluate.runner import EvalRecipe, EvalWorker
from cua.evaluate.taskconfig import TaskConfig
from tests.conftest import require_desktop_tools
from tests.test_osworld_scorer import scorer_venv_or_skip

OSWORLD = Path(__file__).resolve().parents[2] / "shared" / "osworld" / "examples"
FILL_BLANKS = "libreoffice_calc/01b269ae-2111-4a07-81fd-3fcd711993b0.json"  # fill B1:E30 down
PROFILE_NAME = "chrome/2ae9ba84-3a0d-4d4c-8338-3a1478dc5fe3.json"  # name Chrome's profile Thomas
REOPEN_TAB = "chrome/06fe7178-4491-4589-810f-2e2bc9502122.json"  # bring back the closed tab
SLIDE_PANE = "libreoffice_impress/ef9d12bd-bcee-4ba0-a40e-918400f43ddf.json"  # restore the pane
VLC_STREAM = "vlc/bba3381f-b5eb-4439-bd9e-80c22218d5a7.json"  # stream a link in VLC
ROOTS_FOLDER = "os/e0df059f-28a6-4169-924f-b9623e7184cc.json"  # rename a folder `sudo mkdir` made
TERMINAL = [Hotkey(keys=["ctrl", "alt", "t"])]  # GNOME Terminal, as on OSWorld's Ubuntu
TERMINAL_PROFILE = ("org.gnome.Terminal.Legacy.Profile:/org/gnome/terminal/legacy/profiles:/"
                    ":b1dcc9dd-5262-4d8d-a863-c897e6d979b9/")  # its default profile
# Tasks a few actions solve: task file -> steps, each step's actions sent in one request (the
# desktop is ready again after each). Terminal tasks type into GNOME Terminal, whose text
# /terminal reads.
SOLVED_IN_A_FEW_ACTIONS = {
    # the terminal's size set for good (its profile's, in dconf): postconfig opens a terminal
    # and runs `stty size`
    "os/13584542-872b-42d8-b299-866967b5c3ef.json": [
        TERMINAL, [Type(content=f"gsettings set {TERMINAL_PROFILE} default-size-columns 132; "
                                f"gsettings set {TERMINAL_PROFILE} default-size-rows 43\n")]],
    # do not disturb: a GNOME setting (gsettings over the desktop's dconf)
    "os/f9be0997-4b7c-45c5-b05c-4612b44a6118.json": [
        TERMINAL, [Type(content="gsettings set org.gnome.desktop.notifications show-banners "
                                "false\n")]],
    # the heading centred, the document saved in its format (Enter keeps it, as in OSWorld's VM)
    "libreoffice_writer/3ef2b351-8a84-4ff2-8724-d86eae9b842e.json": [
        [Hotkey(keys=["ctrl", "home"]), Hotkey(keys=["ctrl", "e"]), Hotkey(keys=["ctrl", "s"])],
        [Hotkey(keys=["enter"])]],
}
# Multi-app tasks whose setup starts GNOME Terminal on OSWorld's session bus path,
# /run/user/1000/bus: the desktop's own bus in a container only.
SOLVED_IN_THE_TERMINAL_SETUP_OPENS = {
    # Writer "frozen": killed from the command line (bash's history is checked)
    "multi_apps/2b9493d7-49b8-493a-a71b-56cd1f4d6908.json": [
        [Type(content="pkill -9 soffice\n")]],
    # a project (the stand-in archive) committed and pushed to its local origin
    "multi_apps/2c9fc0de-3ee7-45e1-a5df-c86206ad78b5.json": [
        [Type(content='git add -A && git commit -qm "daily update" && git push -q origin main\n')]],
}
PROFILE_NAME_FIELD = (815, 274)  # chrome://settings/manageProfile at 1920x1080
VIEW_SLIDE_PANE = [["f10"], ["right"], ["right"]] + [["down"]] * 11 + [["enter"]]  # Impress 7.4
CONTROLLER_CALLS = """
import json, sys
from desktop_env.controllers.python import PythonController
controller = PythonController(sys.argv[1], int(sys.argv[2]))
print(json.dumps({
    "screenshot": (controller.get_screenshot() or b"")[:8].hex(),
    "screen": controller.get_vm_screen_size(),
    "file": (controller.get_file("/home/user/notes.txt") or b"").decode(),
    "python": controller.execute_python_command("print(pyautogui.size())"),
    "script": controller.run_python_script("print(6 * 7)"),
    "bash": controller.run_bash_script("echo $HOME"),
    "platform": controller.get_vm_platform(),
    "desktop": controller.get_vm_desktop_path(),
    "window": controller.get_vm_window_size("google-chrome"),
    "directory": controller.get_vm_directory_tree("/home/user"),
    "terminal": controller.get_terminal_output(),
    "tree": controller.get_accessibility_tree(),
}))
"""


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


def fails_untouched_then_passes_solved(scorer, desktop, name: str, steps: list[list],
                                       tmp_path: Path) -> None:
    """Set up (stand-ins for the task's files) and score the untouched state: it must fail; set
    up again, play `steps`, score: it must pass."""
    task = shared_task(name)
    assert write_stand_ins(task, tmp_path / "cache")[1] == []
    harness = OSWorldHarness(task, scorer, tmp_path / "cache")
    harness.setup(desktop, task_env())
    _, initial = harness.score(desktop, tmp_path / "initial", last_action=None)
    assert initial.score == 0 and all(d.error is None for d in initial.details), initial
    harness.setup(desktop, task_env())
    for actions in steps:
        assert all(r.ok for r in desktop.execute(actions).results)
        desktop.settle()  # ready, as an agent's next screenshot (seconds later) would find it
    _, solved = harness.score(desktop, tmp_path / "solved", last_action="DONE")
    assert solved.score == 1, solved


@pytest.mark.parametrize("name", SOLVED_IN_A_FEW_ACTIONS)
def test_osworld_task_fails_untouched_and_passes_solved(name, scorer, commands_desktop, tmp_path):
    fails_untouched_then_passes_solved(scorer, commands_desktop, name,
                                       SOLVED_IN_A_FEW_ACTIONS[name], tmp_path)


@pytest.mark.parametrize("backend_name", ["docker"], indirect=True)
@pytest.mark.parametrize("name", SOLVED_IN_THE_TERMINAL_SETUP_OPENS)
def test_multi_app_task_solved_in_the_terminal_its_setup_opens(name, scorer, commands_desktop,
                                                              tmp_path):
    fails_untouched_then_passes_solved(scorer, commands_desktop, name,
                                       SOLVED_IN_THE_TERMINAL_SETUP_OPENS[name], tmp_path)


@pytest.mark.parametrize("backend_name", ["docker"], indirect=True)  # VLC refuses root
def test_vlc_task_reads_vlc_over_its_http_interface(scorer, commands_desktop, tmp_path):
    """The setup starts VLC, whose HTTP interface (seeded as in OSWorld's VM) the
    vlc_playing_info getter reads through the bridge: VLC is stopped, not streaming the link.
    Reading the accessibility tree leaves VLC running (Qt apps crash on Properties.GetAll)."""
    task = shared_task(VLC_STREAM)
    harness = OSWorldHarness(task, scorer, tmp_path / "cache")
    harness.setup(commands_desktop, task_env())
    tree = etree.fromstring(commands_desktop.http.get("/accessibility").json()["AT"].encode())
    assert tree.xpath("//application[@name='vlc']")
    assert any(w.wm_class == "vlc.vlc" for w in commands_desktop.windows())
    _, initial = harness.score(commands_desktop, tmp_path / "initial", last_action=None)
    assert initial.score == 0 and initial.details[0].error is None, initial
    status = etree.parse(str(task_cache(tmp_path / "cache", task) / "status.xml"))
    assert status.findtext("state") == "stopped"


@pytest.mark.parametrize("backend_name", ["docker"], indirect=True)
def test_a_task_whose_setup_runs_sudo_runs_in_a_container_started_for_it(scorer, backend_name,
                                                                        tmp_path):
    """The task's setup makes its folder with `echo {CLIENT_PASSWORD} | sudo -S mkdir`: a
    container started for sudo runs it as root (the folder is root's, and renamed in the terminal
    passes); a default container refuses sudo (no privileges to gain)."""
    def shell(desktop, command: str) -> dict:
        return desktop.http.post("/execute", json={"command": command, "shell": True}).json()

    with registry.backend("docker").start(sudo=True) as desktop:
        fails_untouched_then_passes_solved(scorer, desktop, ROOTS_FOLDER, [TERMINAL, [Type(
            content="mv ~/Desktop/todo_list_Jan_1 ~/Desktop/todo_list_Jan_2\n")]], tmp_path)
        assert shell(desktop, "stat -c %U ~/Desktop/todo_list_Jan_2")["output"] == "root\n"
    with registry.backend("docker").start() as locked:
        refused = shell(locked, "echo password | sudo -S id -u")
        assert refused["returncode"] != 0 and "no new privileges" in refused["error"], refused


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
                              Type(content="chrome://settings/manageProfile\n")])
    desktop.settle()  # the settings page drawn, as an agent's next screenshot would show it
    report.results += desktop.execute([Click(x=PROFILE_NAME_FIELD[0], y=PROFILE_NAME_FIELD[1]),
                                       Hotkey(keys=["ctrl", "a"]),
                                       Type(content="Thomas\t")]).results
    assert all(r.ok for r in report.results)
    _, solved = harness.score(desktop, tmp_path / "solved", last_action="DONE")
    assert solved.score == 1


def test_impress_slide_pane_is_read_from_the_accessibility_tree(scorer, commands_desktop,
                                                               tmp_path):
    """The setup hides Impress's slide pane through its View menu (pyautogui in the desktop); the
    accessibility_tree getter reads the desktop's AT-SPI tree from /accessibility and
    check_left_panel looks for the pane in it."""
    task = shared_task(SLIDE_PANE)
    harness, desktop = OSWorldHarness(task, scorer, tmp_path / "cache"), commands_desktop
    harness.setup(desktop, task_env())
    _, initial = harness.score(desktop, tmp_path / "initial", last_action=None)
    assert initial.score == 0 and initial.details[0].func == "check_left_panel"
    assert initial.details[0].error is None
    report = desktop.execute([Hotkey(keys=keys) for keys in VIEW_SLIDE_PANE])
    assert all(r.ok for r in report.results)
    _, solved = harness.score(desktop, tmp_path / "solved", last_action="DONE")
    assert solved.score == 1


def test_python_controller_methods_answer_from_a_cua_desktop(commands_desktop, tmp_path):
    """desktop-env's PythonController, unmodified in the scorer venv, against a cua desktop
    (through the bridge) where Chrome runs: its address bar is in the accessibility tree."""
    scorer_venv_or_skip()
    desktop = commands_desktop
    desktop.reset(task_env())
    (tmp_path / "notes.txt").write_text("seven tabs")
    desktop.upload(tmp_path / "notes.txt")
    chrome = {"command": ["google-chrome", "--remote-debugging-port=1337"]}
    assert desktop.http.post("/setup/launch", json=chrome).status_code == 200
    desktop.settle()
    with Bridge(desktop) as bridge:
        run = subprocess.run([str(scorer_env.python()), "-c", CONTROLLER_CALLS,
                              bridge.vm["host"], str(bridge.vm["server_port"])],
                             capture_output=True, text=True, timeout=300,
                             env=scorer_env.snippet_env(tmp_path), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.splitlines()[-1])
    assert got["screenshot"] == b"\x89PNG\r\n\x1a\n".hex()
    assert got["screen"] == {"width": 1920, "height": 1080}
    assert got["file"] == "seven tabs"
    assert got["python"]["returncode"] == 0 and "width=1920" in got["python"]["output"]
    assert got["script"]["output"].strip() == "42"
    assert got["bash"]["returncode"] == 0 and got["bash"]["output"].strip()
    assert got["platform"] == "Linux" and got["desktop"].endswith("/Desktop")
    assert got["window"]["width"] > 0
    assert "notes.txt" in [child["name"] for child in got["directory"]["children"]]
    tree = etree.fromstring(got["tree"].encode())
    address = tree.xpath("//application[@name='Google Chrome']//entry"
                         "[@name='Address and search bar']")
    assert tree.tag == "desktop-frame" and address
    states = {k.split("}")[1] for k in address[0].attrib if k.startswith(f"{{{atspi.NS['st']}}}")}
    assert {"editable", "focusable", "showing"} <= states


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
