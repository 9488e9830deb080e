"""The local backend on real Xvfb + openbox + LibreOffice: isolation, recovery, bad input,
validation and clean teardown."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest

from cua.actions import ActionError, Click, Hotkey, Type
from cua.content.check import ContentError, check_content
from cua.content.documents import make_document, make_workbook
from cua.desktop import procs, session
from cua.desktop.local import LocalBackend
from cua.desktop.waiting import wait_until
from cua.desktop.zygote import Zygote, write_mark
from cua.envspec import load_env
from tests.conftest import require_desktop_tools
from tests.test_clipboard import fetch as fetch_clipboard

CALC = load_env("calc")
NAME_BOX = Click(x=72, y=140)


@pytest.fixture
def workbook(tmp_path) -> Path:
    return make_workbook(tmp_path / "sales.xlsx", seed=3)


def _kill(desktop_id: str, comm: str) -> None:
    for pid in procs.marked_pids(desktop_id):
        if procs.comm(pid) == comm:
            os.kill(pid, signal.SIGKILL)


def test_three_desktops_side_by_side(workbook):
    require_desktop_tools()
    backend = LocalBackend()

    def run(i: int):
        desktop = backend.start()
        try:
            report = desktop.reset(CALC, [workbook])
            desktop.execute([NAME_BOX, Type(content=f"J{i + 2}\n{i}\n")])
            pipes = procs.shared_sockets(procs.marked_pids(desktop.id))
            return desktop.id, report.display, Path(procs_root(desktop.id)), desktop.health(), pipes
        finally:
            desktop.close()

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, range(3)))
    displays = {display for _, display, *_ in results}
    assert len(displays) == 3  # one X display each
    assert all(health.ok for *_, health, _ in results)
    for desktop_id, _, root, _, pipes in results:  # nothing left behind
        assert procs.marked_pids(desktop_id) == []
        assert not root.exists()
        assert [p.name for p in pipes if p.name.startswith("OSL_PIPE")]  # soffice's, in /tmp
        assert not any(p.exists() for p in pipes)


def test_ending_processes_removes_the_sockets_they_left_in_the_shared_tmp():
    name = f"cua-test-{os.getpid()}-{time.monotonic_ns()}"
    script = ("import socket, sys, time\n"
              "held = [socket.socket(socket.AF_UNIX) for _ in sys.argv[1:]]\n"
              "for sock, path in zip(held, sys.argv[1:]):\n"
              "    sock.bind(path); sock.listen()\n"
              "print('up', flush=True); time.sleep(60)\n")
    shared, private = procs.SHARED_TMP / name, Path(tempfile.mkdtemp()) / name
    child = subprocess.Popen([sys.executable, "-c", script, str(shared), str(private)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "up\n"
        assert procs.shared_sockets([child.pid]) == [shared]
        procs.kill_all([child.pid])  # a SIGTERM ends Python without unlinking its sockets
        assert child.wait(5) == -signal.SIGTERM
        assert not shared.exists()
        assert private.is_socket()  # outside /tmp: the owner's to clean (a desktop's root)
    finally:
        child.kill()
        shared.unlink(missing_ok=True)
        shutil.rmtree(private.parent)


def procs_root(desktop_id: str) -> str:
    from cua.desktop import registry
    return registry.load(desktop_id).root


def test_each_desktop_has_its_own_home_profile_and_display(local_desktop, workbook):
    local_desktop.reset(CALC, [workbook])
    root = Path(procs_root(local_desktop.id))
    soffice = [p for p in procs.marked_pids(local_desktop.id) if procs.comm(p) == "soffice.bin"]
    assert soffice, "LibreOffice runs as a process of this desktop"
    cmdline = Path(f"/proc/{soffice[0]}/cmdline").read_bytes().decode()
    environ = Path(f"/proc/{soffice[0]}/environ").read_bytes().decode()
    assert f"-env:UserInstallation=file://{root}/lo-profile" in cmdline
    assert f"HOME={root}/home" in environ and f"TMPDIR={root}/tmp" in environ


def test_pasted_text_stays_on_the_clipboard_until_the_next_reset(local_desktop, workbook):
    report = local_desktop.reset(CALC, [workbook])
    typed = local_desktop.execute([NAME_BOX, Type(content="J2\n"), Type(content="Grüße €\n")])
    assert all(r.ok for r in typed.results)
    assert fetch_clipboard(report.display) == "€"  # the last run pasted, as after a copy
    report = local_desktop.reset(CALC, [workbook])
    assert fetch_clipboard(report.display) is None  # the next episode starts with none


def test_killed_app_is_detected_and_reset_recovers(local_desktop, workbook):
    local_desktop.reset(CALC, [workbook])
    assert local_desktop.health().apps == {"calc": True}
    _kill(local_desktop.id, "soffice.bin")
    deadline = time.monotonic() + 10
    while local_desktop.health().ok and time.monotonic() < deadline:
        time.sleep(0.1)
    health = local_desktop.health()
    assert not health.ok and health.apps == {"calc": False} and health.x_server
    report = local_desktop.reset(CALC, [workbook])
    assert not report.x_restarted
    assert local_desktop.health().ok
    titles = [w.title for w in local_desktop.windows()]
    assert "sales.xlsx - LibreOffice Calc" in titles
    assert "Document Recovery" not in " ".join(titles)


def test_dead_x_server_is_detected_and_reset_recovers(local_desktop, workbook):
    local_desktop.reset(CALC, [workbook])
    _kill(local_desktop.id, "Xvfb")
    deadline = time.monotonic() + 10
    while local_desktop.health().x_server and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not local_desktop.health().ok
    report = local_desktop.reset(CALC, [workbook])
    assert report.x_restarted and local_desktop.health().ok


def test_a_screen_nothing_is_drawn_to_settles_without_looking_at_it(local_desktop, workbook):
    """X's DAMAGE reports stand in for polling: a key that draws nothing costs the first frame
    only, where looking every interval grabs one per 20 ms of the quiet period; a key that moves
    the cell cursor is still seen, and its screen comes back with the request."""
    watching = CALC.model_copy(update={"settle": CALC.settle.model_copy(
        update={"quiet_s": 0.3})})  # fifteen intervals: looking costs a frame each
    polling = watching.model_copy(update={"settle": watching.settle.model_copy(
        update={"use_damage": False})})
    frames = {}
    for spec in (watching, polling):
        local_desktop.reset(spec, [workbook])
        report = local_desktop.execute([Hotkey(keys=["shift"])] * 2)  # the fewer: a stray draw
        frames[spec.settle.use_damage] = min(r.settle.frames for r in report.results)
        moved = local_desktop.execute([Hotkey(keys=["down"])], observe=True)
        assert moved.results[0].settle.changed and moved.results[0].settle.settled
        assert moved.screen.png == local_desktop.screenshot_png()
    assert frames[True] <= 2 and frames[False] >= 5, frames


def test_the_minimum_wait_after_an_action_follows_the_apps_running(local_desktop, workbook,
                                                                   tmp_path):
    """LibreOffice draws its toolbars and status bar in rounds 300 ms apart, idle in between, so a
    step waits at least 0.8 s while it runs; an editor alone draws at once; an env spec's
    `min_wait_s` holds whatever runs."""
    notes = tmp_path / "notes.txt"
    notes.write_text("North 40\n")
    fixed = CALC.model_copy(update={"settle": CALC.settle.model_copy(update={"min_wait_s": 0.2})})
    for spec, files, wait in ((CALC, [workbook], 0.8), (load_env("editor"), [notes], 0.05),
                              (fixed, [workbook], 0.2)):
        local_desktop.reset(spec, files)
        settle = local_desktop.execute([Hotkey(keys=["down"])]).results[0].settle
        assert settle.min_wait_s == wait and settle.waited_s >= wait, (spec.name, settle)


def test_the_first_step_after_a_reset_returns_the_screen_calc_ends_on(local_desktop, workbook):
    """Calc still has a start-up job pending once its screen is still after loading: a click at
    once has its toolbars (font box, Bold) redrawn in LibreOffice's second round, 0.6-0.75 s
    later; the step's screen is still the one Calc ends on."""
    for _ in range(2):
        local_desktop.reset(CALC, [workbook])  # the cursor on the bold header, A1
        step = local_desktop.execute([Click(x=200, y=300)], observe=True)  # a plain data cell
        time.sleep(0.6)
        assert step.screen.png == local_desktop.screenshot_png()


def test_the_first_use_of_a_key_returns_the_screen_calc_ends_on(local_desktop, workbook):
    """The first time Calc runs a keyboard command its toolbars are redrawn a round later (the
    first ctrl+Home: font box and Bold 0.65-0.75 s after the key, the next ones 0.35-0.45 s); the
    step's screen is still the one Calc ends on."""
    local_desktop.reset(CALC, [workbook])
    local_desktop.execute([Click(x=200, y=300)])  # a plain data cell; the header A1 is bold
    for _ in range(2):
        step = local_desktop.execute([Hotkey(keys=["ctrl", "home"])], observe=True)
        time.sleep(0.6)
        assert step.screen.png == local_desktop.screenshot_png()
        local_desktop.execute([Click(x=200, y=300)])


def test_a_recheck_reports_whether_an_action_returned_the_screen_calc_ends_on(local_desktop,
                                                                             workbook):
    """With `settle.recheck_s` each action's settle report says whether its screen changed
    within that time: with no minimum wait, Calc redraws its toolbars after the step returned;
    with LibreOffice's own, it does not. Without, nothing is rechecked."""
    for min_wait_s, stale in ((0.0, True), (None, False)):
        settle = CALC.settle.model_copy(update={"min_wait_s": min_wait_s, "recheck_s": 0.6})
        local_desktop.reset(CALC.model_copy(update={"settle": settle}), [workbook])
        report = local_desktop.execute([Click(x=200, y=300)])  # from the bold header A1
        assert report.results[0].settle.stale is stale
    local_desktop.reset(CALC, [workbook])
    assert local_desktop.execute([Click(x=200, y=300)]).results[0].settle.stale is None


def test_corrupt_files_are_rejected_by_name(local_desktop, shared_content, workbook):
    local_desktop.reset(CALC, [workbook])
    for name in ("54764.xlsx", "49609.xlsx", "protected_sha512.xlsx",
                 "clusterfuzz-testcase-minimized-POIXSSFFuzzer-5089447305609216.xlsx"):
        started = time.monotonic()
        with pytest.raises(ContentError) as caught:
            local_desktop.reset(CALC, [shared_content / "corrupt" / name])
        assert name in str(caught.value)
        assert time.monotonic() - started < 30
    assert local_desktop.health().x_server  # the desktop survives and still works
    local_desktop.reset(CALC, [workbook])
    assert local_desktop.health().ok


def test_an_app_stopped_at_a_dialog_fails_the_reset_fast_with_its_words(tmp_path, monkeypatch,
                                                                         workbook):
    """A workbook with a row past Calc's last makes Calc stop at a modal warning instead of
    showing it. The content check refuses it; let through here, the reset names the dialog and
    its text within seconds, not after `ready_timeout_s`, and the next reset recovers."""
    require_desktop_tools()
    far = tmp_path / "far.xlsx"
    with zipfile.ZipFile(workbook) as book, zipfile.ZipFile(far, "w") as out:
        for info in book.infolist():
            data = book.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", b'<row r="1048577"><c r="A1048577"><v>1</v>'
                                                     b"</c></row></sheetData>")
            out.writestr(info, data)
    with pytest.raises(ContentError, match="row 1048577 is beyond"):
        check_content(far)
    monkeypatch.setattr(session, "check_content", lambda path: None)
    desktop = session.Session(tmp_path / "desktop", f"t{os.getpid()}")
    try:
        for path in (far, workbook):
            shutil.copy(path, desktop.home)
        started = time.monotonic()
        with pytest.raises(session.AppNotReady) as caught:
            desktop.reset(CALC, ["far.xlsx"])
        assert time.monotonic() - started < CALC.ready_timeout_s / 2
        assert str(caught.value).startswith(
            "far.xlsx: calc shows a dialog instead of its window: 'Warning': The data could not be "
            "loaded completely because the maximum number of rows per sheet was exceeded")
        desktop.reset(CALC, ["sales.xlsx"])
        assert desktop.health().ok
    finally:
        desktop.close()


def test_an_app_that_dies_before_its_window_is_reported_with_what_it_printed(tmp_path,
                                                                              monkeypatch):
    require_desktop_tools()
    monkeypatch.setattr(session.apps, "command", lambda *_: [
        "sh", "-c", "echo 'Failed to register: Timeout was reached' >&2; exit 3"])
    editor = load_env("editor").model_copy(update={"ready_timeout_s": 2.0})
    desktop = session.Session(tmp_path / "desktop", f"t{os.getpid()}")
    try:
        with pytest.raises(session.AppNotReady) as caught:
            desktop.reset(editor, [])
        assert str(caught.value).endswith(
            "editor: editor showed no window within 2 s (windows: none); sh exited with status 3; "
            "it printed: Failed to register: Timeout was reached")
        assert not (desktop.home / "logs").exists()  # the app's log is outside the home
    finally:
        desktop.close()


def test_invalid_actions_are_refused_and_nothing_runs(local_desktop, tmp_path):
    document = make_document(tmp_path / "memo.docx")
    local_desktop.reset(load_env("writer"), [document])
    before = local_desktop.download("memo.docx")
    windows = local_desktop.windows()
    typed_then_saved = [Type(content="x"), Hotkey(keys=["ctrl", "s"])]
    for bad in (Click(x=1920, y=10), Hotkey(keys=["ctrl", "hyperjump"])):
        with pytest.raises(ActionError):
            local_desktop.execute([*typed_then_saved, bad])
    time.sleep(1)
    # Had the valid actions before the bad one run, the edit would bring up the save dialog.
    assert local_desktop.windows() == windows
    assert local_desktop.download("memo.docx") == before


def test_multi_app_env_opens_each_file_in_its_app(local_desktop, workbook, tmp_path):
    document = make_document(tmp_path / "report.docx")
    report = local_desktop.reset(load_env("calc-writer"), [workbook, document])
    assert report.opened == {"sales.xlsx": "calc", "report.docx": "writer"}
    titles = {w.title for w in report.windows}
    assert {"sales.xlsx - LibreOffice Calc", "report.docx - LibreOffice Writer"} <= titles
    assert local_desktop.health().apps == {"calc": True, "writer": True}


def test_a_bare_env_starts_no_app_and_opens_files_in_theirs(local_desktop, workbook, tmp_path):
    bare = load_env("osworld")
    report = local_desktop.reset(bare)
    assert not report.windows and local_desktop.health().ok
    report = local_desktop.reset(bare, [workbook])
    assert report.opened == {workbook.name: "calc"}
    assert [w.title for w in report.windows] == [f"{workbook.name} - LibreOffice Calc"]


def test_server_refuses_requests_without_the_token(local_desktop):
    response = httpx.get(f"{local_desktop.base_url}/screenshot")
    assert response.status_code == 401
    response = httpx.get(f"{local_desktop.base_url}/files/../../etc/passwd",
                         headers=local_desktop.http.headers)
    assert response.status_code in (403, 404)


def test_files_cannot_escape_the_home(local_desktop, workbook):
    local_desktop.reset(CALC, [workbook])
    response = local_desktop.http.get("/files/..%2F..%2Fetc%2Fpasswd")
    assert response.status_code == 403


def test_browser_editor_terminal_and_files_envs(local_desktop, tmp_path):
    page = tmp_path / "prices.html"
    page.write_text("<html><head><title>Price list</title></head><body><table><tr><td>Laptop"
                    "</td><td>1199</td></tr></table></body></html>")
    notes = tmp_path / "notes.txt"
    notes.write_text("Units per region\nNorth 40\n")
    for env, files in (("browser", [page]), ("editor", [notes]), ("terminal", []),
                       ("impress-files", [])):
        report = local_desktop.reset(load_env(env), files)
        assert local_desktop.health().ok, (env, local_desktop.health())
        titles = " | ".join(w.title for w in report.windows)
        if env == "browser":
            assert "Price list" in titles
        if env == "editor":
            local_desktop.execute([Hotkey(keys=["ctrl", "end"]), Type(content="South 12 <ok>\n"),
                                   Hotkey(keys=["ctrl", "s"])])
            time.sleep(0.5)
            assert local_desktop.download("notes.txt").decode().endswith("South 12 <ok>\n")


def test_a_killed_server_leaves_nothing_once_another_desktop_starts(workbook):
    require_desktop_tools()
    from cua.desktop import registry

    backend = LocalBackend()
    first = backend.start()
    first.reset(load_env("calc"), [workbook])
    record = registry.load(first.id)
    left = [p for p in procs.marked_pids(first.id) if p != record.pid]
    assert {procs.comm(p) for p in left} >= {"Xvfb", "openbox"}
    pipes = procs.shared_sockets(left)
    assert pipes  # soffice's single-instance pipe
    os.kill(record.pid, signal.SIGKILL)  # no shutdown: Xvfb, openbox and soffice stay behind
    time.sleep(0.5)
    assert procs.marked_pids(first.id)
    second = backend.start()
    try:
        assert procs.marked_pids(first.id) == []
        assert not Path(record.root).exists()
        assert not any(p.exists() for p in pipes)
        assert first.id not in {r.id for r in registry.records()}
        assert second.id in {r.id for r in registry.records()}
    finally:
        second.close()


def test_servers_are_forked_by_one_zygote_share_its_modules_and_carry_their_marks():
    require_desktop_tools()
    from cua.desktop import registry
    from cua.desktop.local import ZYGOTE

    backend = LocalBackend()
    first, second = backend.start(), backend.start()
    try:
        servers = [psutil.Process(registry.load(d.id).pid) for d in (first, second)]
        assert [s.ppid() for s in servers] == [ZYGOTE.pid] * 2
        assert servers[0].pid in procs.marked_pids(first.id)
        assert servers[0].pid not in procs.marked_pids(second.id)
        assert servers[1].pid in procs.marked_pids(second.id)
        for server in servers:  # the imported modules' pages, not copies of them
            rollup = Path(f"/proc/{server.pid}/smaps_rollup").read_text().splitlines()
            shared = dict(line.split(":") for line in rollup[1:])["Shared_Dirty"]
            assert int(shared.split()[0]) > 16 * 1024
    finally:
        first.close()
        second.close()


def test_a_dead_zygote_takes_its_owned_servers_along_and_is_started_again(tmp_path):
    require_desktop_tools()

    def spawn(zygote: Zygote, name: str) -> int:
        (tmp_path / name).mkdir()
        (tmp_path / name / "token").write_text("secret")
        pid = zygote.spawn(["--root", str(tmp_path / name), "--ready-file",
                            str(tmp_path / name / "ready"), "--token-file",
                            str(tmp_path / name / "token")],
                           {**os.environ, procs.MARK: name}, tmp_path / name / "log", owned=True)
        wait_until(lambda: (tmp_path / name / "ready").exists(), 30, what="the server")
        return pid

    zygote = Zygote()
    server = spawn(zygote, "aaaaaaaa")
    assert procs.marked_pids("aaaaaaaa") == [server]
    first = zygote.pid
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not procs.alive(server), 10, what="the owned server to shut down")
    again = spawn(zygote, "bbbbbbbb")
    try:
        assert zygote.pid not in (None, first) and psutil.Process(again).ppid() == zygote.pid
    finally:
        procs.kill_all([again])
    with pytest.raises(ValueError, match="8 characters"):
        write_mark("abc")


def test_a_desktop_ends_with_its_killed_owner_and_leaves_nothing():
    require_desktop_tools()
    from cua.desktop import registry

    owner = subprocess.Popen(  # with a fork of itself that lives on: the desktop is not the fork's
        [sys.executable, "-c", "from cua.desktop.local import LocalBackend; import os, time; "
         "d = LocalBackend().start(); fork = os.fork(); fork or time.sleep(600); "
         "print(d.id, fork, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    fork = None
    try:
        desktop_id, fork = owner.stdout.readline().split()
        root = Path(registry.load(desktop_id).root)
        assert root.exists() and procs.marked_pids(desktop_id)
        owner.kill()  # no shutdown: the desktop server sees its owner gone
        deadline = time.monotonic() + 20
        while procs.marked_pids(desktop_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert procs.marked_pids(desktop_id) == []
        assert not root.exists()
        assert procs.alive(int(fork))
    finally:
        owner.kill()
        if fork:
            with suppress(ProcessLookupError):
                os.kill(int(fork), signal.SIGKILL)
