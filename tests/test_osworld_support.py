"""Which OSWorld tasks cua desktops run (the dry run), on OSWorld's own task files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cua.evaluate.osworld import scorer_env
from cua.evaluate.osworld.listing import listed_task_files
from cua.evaluate.osworld.support import task_problems
from cua.evaluate.runner import EvalRecipe, dry_run
from cua.evaluate.taskconfig import TaskConfig, load_tasks

OSWORLD = Path(__file__).resolve().parents[2] / "shared" / "osworld"


def shared_tasks(test_list: str = "test_all.json"):
    if not OSWORLD.exists():
        pytest.skip(f"{OSWORLD} is absent (../shared is beside the checkout only)")
    tasks, failed = load_tasks(listed_task_files(OSWORLD / "examples", OSWORLD / test_list),
                               problems=lambda task: [])
    assert not failed
    return tasks


def task(**fields) -> TaskConfig:
    return TaskConfig.model_validate({"id": "t", "instruction": "do it",
                                      "evaluator": {"func": "exact_match"}, **fields})


def test_every_listed_task_loads_with_its_domain():
    tasks = shared_tasks()
    listed = json.loads((OSWORLD / "test_all.json").read_text())
    assert [(t.domain, t.id) for t in tasks] == [(d, i) for d, ids in listed.items() for i in ids]
    small, _ = load_tasks(listed_task_files(OSWORLD / "examples", OSWORLD / "test_small.json"),
                          domains=["os"], problems=lambda task: [])
    assert small and {t.domain for t in small} == {"os"}


def test_a_test_list_that_does_not_fit_its_examples_folder_is_refused(tmp_path):
    examples, test_list = tmp_path / "examples", tmp_path / "test_small.json"
    (examples / "os").mkdir(parents=True)
    (examples / "os" / "a1.json").write_text("{}")
    test_list.write_text(json.dumps({"os": ["a1", "a2"], "chrome": ["c1"]}))
    assert listed_task_files(examples, test_list, ["os"]) == [
        examples / "os" / "a1.json", examples / "os" / "a2.json", examples / "chrome" / "c1.json"]
    with pytest.raises(ValueError, match="has no domain gimp, vlc .its domains: os, chrome"):
        listed_task_files(examples, test_list, ["vlc", "os", "gimp"])
    with pytest.raises(ValueError, match="holds none of the tasks test_small.json lists"):
        listed_task_files(tmp_path, test_list)
    test_list.write_text("os: [a1]")
    with pytest.raises(ValueError, match="test_small.json: not a test list"):
        listed_task_files(examples, test_list)


def dry_run_of(test_list: str = "test_all.json", **options):
    shared_tasks(test_list)
    if not scorer_env.installed():
        pytest.skip("OSWorld's scorer venv is absent (make install sets it up)")
    return dry_run(EvalRecipe(tasks=[OSWORLD / "examples"], test_list=OSWORLD / test_list,
                              model={"name": "scripted"}, **options))


def test_office_chrome_and_os_domains_run_where_commands_run():
    report = dry_run_of(backend="docker")
    for domain in ("libreoffice_calc", "libreoffice_impress", "libreoffice_writer"):
        assert not report[domain].not_runnable, report[domain].not_runnable
    os_domain = report["os"]  # sudo in the container, as on OSWorld's VM
    assert os_domain.runnable >= 22 and all(
        any("not in cua desktops" in p for p in problems)
        for problems in os_domain.not_runnable.values())  # PulseAudio, timedatectl
    chrome = report["chrome"]  # Chromium as Chrome, its address bar read over AT-SPI
    assert chrome.runnable >= 45 and all(
        any("not in the installed desktop-env" in p for p in problems)
        for problems in chrome.not_runnable.values())  # a getter newer than desktop-env 1.0.2
    gdrive = [problems for problems in report["multi_apps"].not_runnable.values()
              if any("Google account" in p for p in problems)]
    assert gdrive  # listed with their reason, as the README's table says


def test_commands_are_refused_where_they_would_run_on_this_host():
    allowed = dry_run_of(backend="local", allow_host_commands=True)
    assert allowed["libreoffice_calc"].runnable == 47
    assert [problems for problems in allowed["os"].not_runnable.values()  # never root on a host
            if any("needs root (sudo), which only a docker desktop grants" in p for p in problems)]
    report = dry_run_of(backend="local")
    calc = report["libreoffice_calc"]
    assert calc.runnable < 47 and all(
        any("allow commands on this host" in p for p in problems)
        for problems in calc.not_runnable.values())


def test_problems_name_the_step_app_and_getter():
    launch = {"type": "launch", "parameters": {"command": ["VLC_VERBOSE=-1", "code"]}}
    problems = task_problems(task(related_apps=["vs_code", "vlc"], config=[launch], evaluator={
        "func": "f", "result": {"type": "googledrive_file"}}), commands=True)
    assert problems == ["app vs_code: VS Code is not in cua desktops",
                        "config launch: needs VS Code, which is not in cua desktops",
                        "getter googledrive_file: needs a Google account and its credentials, "
                        "which no user of this run has"]
    quoted = {"type": "execute", "parameters": {"command": "echo 'unbalanced", "shell": True}}
    assert task_problems(task(config=[quoted]), commands=True) == []
    shell = {"type": "execute", "parameters": {"command": [
        "/bin/bash", "-c", "X=1 timedatectl set-timezone UTC"]}}
    getter = {"type": "vm_command_line", "command": "killall -0 soffice && echo ok | sudo -S id",
              "shell": True}
    assert task_problems(task(config=[shell], evaluator={"func": "f", "result": getter}),
                         commands=True) == [
        "config execute: needs systemd's timedatectl, which is not in cua desktops",
        "getter vm_command_line: needs root (sudo), which only a docker desktop grants (its "
        "container is the sandbox)"]
    assert task_problems(task(evaluator={"func": "f", "result": getter}), commands=True,
                         sudo=True) == []
    chrome = [{"type": "launch", "parameters": {"command": ["google-chrome",
                                                            "--remote-debugging-port=1337"]}},
              {"type": "launch", "parameters": {"command": "socat tcp-listen:9222,fork "
                                                           "tcp:localhost:1337", "shell": True}},
              {"type": "chrome_open_tabs", "parameters": {"urls_to_open": ["https://x.org"]}}]
    assert task_problems(task(related_apps=["chrome"], config=chrome, evaluator={
        "func": "is_expected_tabs", "result": {"type": "open_tabs_info"}}), commands=True) == []


def test_getters_and_metrics_the_installed_desktop_env_lacks_are_named():
    evaluator = {"func": ["exact_match", "check_new_thing"], "conj": "or",
                 "result": [{"type": "vm_file"}, {"type": "new_getter"}],
                 "expected": [{"type": "rule"}, {"type": "rule"}]}
    offered = ({"vm_file", "rule"}, {"exact_match"})
    assert task_problems(task(evaluator=evaluator), commands=True, offered=offered) == [
        "metric check_new_thing: not in the installed desktop-env==1.0.2",
        "getter new_getter: not in the installed desktop-env==1.0.2"]
    assert task_problems(task(evaluator={"func": "infeasible"}), commands=True,
                         offered=offered) == []
