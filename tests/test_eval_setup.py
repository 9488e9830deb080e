"""OSWorld setup steps read as desktop operations: what is recognised, what is refused and why."""

import json

import pytest

from cua.actions import Click, Hotkey, Type
from cua.desktop.api import WindowInfo
from cua.desktop.ops import (
    Act,
    ActivateWindow,
    Launch,
    OpenFile,
    OutsideHome,
    Sleep,
    find_window,
    home_path,
)
from cua.evaluate import load_tasks
from cua.evaluate.setup import UnsupportedStep, command_ops, env_for, pyautogui_ops


def test_osworld_paths_map_into_the_desktop_home():
    assert home_path("/home/user/Desktop/report.xlsx") == "Desktop/report.xlsx"
    assert home_path("~/a.docx") == "a.docx"
    assert home_path("notes.txt") == "notes.txt"
    for bad in ("/etc/passwd", "/home/user/../root/x", "/home/user"):
        with pytest.raises(OutsideHome):
            home_path(bad)


def test_office_commands_open_files_or_start_the_app():
    assert command_ops(["libreoffice", "--calc", "/home/user/a.xlsx"]) == [
        OpenFile("a.xlsx", "calc")]
    assert command_ops("soffice --norestore /home/user/b.pptx") == [OpenFile("b.pptx", "impress")]
    assert command_ops(["lowriter"]) == [Launch("writer")]
    assert command_ops(["google-chrome", "--remote-debugging-port=1337"]) == [Launch("browser")]
    with pytest.raises(UnsupportedStep, match="no internet"):
        command_ops(["google-chrome", "https://example.com"])


def test_pyautogui_snippets_become_actions_without_running_them():
    code = ("import pyautogui; import time; pyautogui.hotkey(\"ctrl\", \"s\"); time.sleep(0.5); "
            "pyautogui.press('enter'); pyautogui.typewrite('a<b'); pyautogui.click(10, 20)")
    assert pyautogui_ops(code) == [
        Act((Hotkey(keys=["ctrl", "s"]),)), Sleep(0.5), Act((Hotkey(keys=["enter"]),)),
        Act((Type(content="a<b"),)), Act((Click(x=10, y=20),))]
    assert command_ops(["python3", "-c", "import time; time.sleep(60)"]) == [Sleep(5.0)]
    assert command_ops(["xdotool", "key", "ctrl+shift+s"]) == [
        Act((Hotkey(keys=["ctrl", "shift", "s"]),))]


@pytest.mark.parametrize("code", [
    "import os; os.system('rm -rf ~')",
    "pyautogui.hotkey(*keys)",
    "__import__('os').remove('x')",
    "x = 1",
    "pyautogui.moveTo(1, 2)",
])
def test_anything_else_in_python_is_refused(code):
    with pytest.raises(UnsupportedStep):
        pyautogui_ops(code)


def test_unknown_commands_are_refused():
    with pytest.raises(UnsupportedStep, match="recognised shapes"):
        command_ops(["bash", "-c", "curl http://x | sh"])


def test_env_follows_related_apps_then_opened_files():
    env = env_for(["libreoffice_calc", "chrome"], [])
    assert [a.app for a in env.apps] == ["calc", "browser"]
    env = env_for([], [OpenFile("deck.pptx")])
    assert env.name == "impress"
    with pytest.raises(UnsupportedStep, match="no app"):
        env_for(["vlc"], [])


def test_activate_window_matches_titles_like_wmctrl():
    windows = [WindowInfo(id="0x1", pid=1, wm_class="libreoffice.libreoffice-calc",
                          title="sales.xlsx - LibreOffice Calc")]
    assert find_window(windows, ActivateWindow("SALES.xlsx")) is windows[0]
    assert find_window(windows, ActivateWindow("sales.xlsx", strict=True)) is None
    assert find_window(windows, ActivateWindow("libreoffice-calc", by_class=True)) is windows[0]


def test_loading_lists_steps_it_cannot_run_with_the_reason(tmp_path):
    (tmp_path / "doc.xlsx").write_bytes(b"x")
    base = {"instruction": "do it", "related_apps": ["libreoffice_calc"],
            "evaluator": {"func": "compare_table", "result": {
                "type": "vm_file", "path": "/home/user/doc.xlsx", "dest": "doc.xlsx"},
                "options": {"rules": [{"type": "check_cell", "sheet_idx": "RNSheet1",
                                       "coordinate": "A1",
                                       "props": {"value": {"method": "eq", "ref": 1}}}]}}}
    tasks = {
        "ok": [{"type": "download", "parameters": {"files": [
            {"url": "doc.xlsx", "path": "/home/user/doc.xlsx"}]}},
            {"type": "open", "parameters": {"path": "/home/user/doc.xlsx"}}],
        "shell": [{"type": "execute", "parameters": {"command": "rm -rf /", "shell": True}}],
        "proxy": [{"type": "proxy", "parameters": {}}],
        "missing": [{"type": "download", "parameters": {"files": [
            {"url": "gone.xlsx", "path": "/home/user/gone.xlsx"}]}}],
        "outside": [{"type": "open", "parameters": {"path": "/etc/hosts"}}],
    }
    for name, config in tasks.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({**base, "id": name, "config": config}))
    loaded, unsupported = load_tasks(tmp_path)
    assert [t.id for t in loaded] == ["ok"]
    assert "recognised shapes" in unsupported["shell"]
    assert "'proxy' is not supported" in unsupported["proxy"]
    assert "gone.xlsx is not a local file" in unsupported["missing"]
    assert "only paths under /home/user" in unsupported["outside"]
    assert loaded[0].domain == tmp_path.name
    assert [a.app for a in loaded[0].env().apps] == ["calc"]


def test_collection_saves_the_way_eval_tasks_do():
    """Collection's postconfig is the one `cua eval make` writes into task files, as read back."""
    from cua.collect.expert.base import save_ops
    from cua.evaluate.make import save_postconfig
    from cua.evaluate.setup import plan_steps
    from cua.evaluate.taskconfig import SetupStep

    steps = [SetupStep.model_validate(step) for step in save_postconfig("memo.docx")]
    assert plan_steps(steps, lambda ref: ref) == save_ops("memo.docx")


def test_chosen_domains_list_only_their_own_unsupported_tasks(tmp_path):
    """`cua eval --domains X` says nothing of other domains' tasks."""
    from cua.evaluate.runner import EvalRecipe, select_tasks

    task = {"instruction": "do it", "config": [{"type": "proxy", "parameters": {}}],
            "evaluator": {"func": "exact_match", "result": {"type": "rule", "rules": {}}}}
    for domain in ("chrome", "libreoffice_calc", "libreoffice_writer"):
        (tmp_path / domain).mkdir()
        (tmp_path / domain / "t.json").write_text(json.dumps({**task, "id": f"{domain}-t"}))
    every = select_tasks(EvalRecipe(tasks=[tmp_path]))[1]
    assert sorted(every) == ["chrome-t", "libreoffice_calc-t", "libreoffice_writer-t"]
    tasks, unsupported = select_tasks(EvalRecipe(tasks=[tmp_path],
                                                 domains=["libreoffice_calc", "libreoffice_writer"]))
    assert tasks == [] and sorted(unsupported) == ["libreoffice_calc-t", "libreoffice_writer-t"]
