"""OSWorld's VM server protocol on a real local desktop, spoken over plain HTTP as desktop-env's
controllers speak it (plus the desktop's token): OSWorld's request and response shapes, its
/home/user paths in the desktop's home and nothing outside it, task code refused unless the
desktop was started to run it."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest

from cua.content.documents import make_document, make_workbook
from cua.desktop import registry
from cua.desktop.local import LocalBackend
from cua.desktop.waiting import wait_until
from cua.envspec import load_env
from tests.conftest import docker_engine_or_skip, require_desktop_tools

CALC = load_env("calc")
COMMAND_ROUTES = {
    "/execute": {"command": ["touch", "ran"]},
    "/setup/execute": {"command": "touch ran"},
    "/setup/execute_with_verification": {"command": "touch ran"},
    "/setup/launch": {"command": "touch ran"},
    "/run_python": {"code": "open('ran', 'w')"},
    "/run_bash_script": {"script": "touch ran"},
}


@pytest.fixture(scope="module")
def osworld(tmp_path_factory):
    """A local desktop allowed to run task commands, reset into Calc on sales.xlsx."""
    require_desktop_tools()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUA_STATE_DIR", str(tmp_path_factory.getbasetemp() / "desktops"))
        desktop = LocalBackend(allow_commands=True).start()
        try:
            folder = tmp_path_factory.mktemp("content")
            desktop.reset(CALC, [make_workbook(folder / "sales.xlsx", seed=3)])
            yield desktop
        finally:
            desktop.close()


def home_of(desktop) -> Path:
    return Path(registry.load(desktop.id).root) / "home"


def upload(desktop, path: str, data: bytes) -> httpx.Response:
    """SetupController's upload: multipart, the path first, then the file."""
    return desktop.http.post("/setup/upload", data={"file_path": path},
                             files={"file_data": (Path(path).name, data)})


def windows_titled(desktop, name: str) -> list[str]:
    return [w.title for w in desktop.windows() if name in w.title]


def test_every_endpoint_wants_the_token(local_desktop):
    with httpx.Client(base_url=local_desktop.base_url, timeout=30) as anonymous:
        for method, route in [("POST", "/execute"), ("POST", "/setup/upload"), ("POST", "/file"),
                              ("POST", "/screen_size"), ("GET", "/terminal"),
                              ("POST", "/setup/open_file"), ("POST", "/list_directory")]:
            assert anonymous.request(method, route).status_code == 401, route


def test_upload_then_file_round_trip_under_home_user(osworld, tmp_path):
    data = make_workbook(tmp_path / "report.xlsx", seed=5).read_bytes()
    reply = upload(osworld, "/home/user/Desktop/report.xlsx", data)
    assert reply.status_code == 200 and reply.text == f"File Uploaded: {len(data)} bytes"
    assert (home_of(osworld) / "Desktop" / "report.xlsx").read_bytes() == data
    for name in ("/home/user/Desktop/report.xlsx", "~/Desktop/report.xlsx",
                 "Desktop/report.xlsx"):
        got = osworld.http.post("/file", data={"file_path": name})
        assert got.status_code == 200 and got.content == data, name
        assert got.headers["content-disposition"].startswith("attachment")
    missing = osworld.http.post("/file", data={"file_path": "/home/user/none.xlsx"})
    assert missing.status_code == 404 and "error" in missing.json()
    assert osworld.http.post("/file", data={}).status_code == 400
    nested = upload(osworld, "/home/user/new/deeper/notes.txt", b"hello")
    assert nested.status_code == 200  # missing folders are made
    assert (home_of(osworld) / "new" / "deeper" / "notes.txt").read_bytes() == b"hello"


def test_list_directory_gives_osworlds_tree(osworld):
    assert upload(osworld, "/home/user/tree/a.txt", b"a").status_code == 200
    assert upload(osworld, "/home/user/tree/sub/b.txt", b"b").status_code == 200
    reply = osworld.http.post("/list_directory", json={"path": "/home/user/tree"})
    assert reply.status_code == 200
    assert reply.json() == {"directory_tree": {"type": "directory", "name": "tree", "children": [
        {"type": "file", "name": "a.txt"},
        {"type": "directory", "name": "sub", "children": [{"type": "file", "name": "b.txt"}]}]}}
    assert osworld.http.post("/list_directory", json={}).status_code == 400
    not_a_folder = osworld.http.post("/list_directory", json={"path": "/home/user/tree/a.txt"})
    assert not_a_folder.status_code == 400 and "error" in not_a_folder.json()


def test_paths_outside_the_home_are_refused(osworld, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("precious")
    (home_of(osworld) / "leak").symlink_to(tmp_path)
    for name in ("/etc/passwd", "/home/user/../../etc/passwd", "~/../x", "../x",
                 f"/home/user/leak/{outside.name}", str(outside)):
        assert osworld.http.post("/file", data={"file_path": name}).status_code == 403, name
    assert upload(osworld, "/home/user/leak/planted.txt", b"x").status_code == 403
    assert upload(osworld, str(tmp_path / "planted.txt"), b"x").status_code == 403
    assert not (tmp_path / "planted.txt").exists() and outside.read_text() == "precious"
    assert osworld.http.post("/list_directory", json={"path": "/"}).status_code == 403
    listed = osworld.http.post("/list_directory", json={"path": "/home/user"}).json()
    leak = next(c for c in listed["directory_tree"]["children"] if c["name"] == "leak")
    assert leak == {"type": "file", "name": "leak"}  # a link is not followed out of the home
    bash = osworld.http.post("/run_bash_script", json={"script": "pwd", "working_dir": "/etc"})
    assert bash.status_code == 403


def post_upload_raw(desktop, framing: str, chunks: list[bytes] = ()) -> str:
    """POST /setup/upload over a bare socket: the headers with `framing` (a content-length or
    chunked), then `chunks` (chunk-encoded, no last chunk); the server's answer. Nothing is sent
    that the server does not read, so its answer cannot be lost to a reset connection."""
    url = httpx.URL(desktop.base_url)
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(f"POST /setup/upload HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: {desktop.http.headers['Authorization']}\r\n"
                     f"Content-Type: multipart/form-data; boundary=b\r\n{framing}\r\n\r\n"
                     .encode())
        for chunk in chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):  # a JSON error's end
            if not (data := sock.recv(4096)):
                break
            reply += data
    return reply.decode(errors="replace")


def test_the_upload_limit_applies_to_osworlds_upload(monkeypatch):
    require_desktop_tools()
    monkeypatch.setenv("CUA_MAX_UPLOAD_MB", "2")
    with LocalBackend().start() as desktop:
        fits = upload(desktop, "fits.bin", b"x" * (3 << 19))  # over the 1 MiB JSON cap
        assert fits.status_code == 200
        declared = post_upload_raw(desktop, f"Content-Length: {3 << 20}")
        assert declared.startswith("HTTP/1.1 413") and '"size"' in declared
        head = (b'--b\r\nContent-Disposition: form-data; name="file_path"\r\n\r\nbig.bin\r\n'
                b'--b\r\nContent-Disposition: form-data; name="file_data"; filename="b"\r\n\r\n')
        block = 64 << 10
        body = [head, *[b"y" * block] * 31, b"y" * (block + 1 - len(head))]  # 2 MiB + 1 byte
        assert len(b"".join(body)) == (2 << 20) + 1
        counted = post_upload_raw(desktop, "Transfer-Encoding: chunked", body)
        assert counted.startswith("HTTP/1.1 413") and '"size"' in counted
        assert not (home_of(desktop) / "big.bin").exists()


def test_screen_window_desktop_and_pointer_queries(osworld):
    http = osworld.http
    assert http.post("/screen_size").json() == {"width": CALC.screen.width,
                                                "height": CALC.screen.height}
    size = http.post("/window_size", data={"app_class_name": "libreoffice-calc"}).json()
    assert 0 < size["width"] <= CALC.screen.width and 0 < size["height"] <= CALC.screen.height
    assert http.post("/window_size", data={"app_class_name": "nothing"}).status_code == 404
    assert http.post("/window_size").status_code == 400
    assert http.post("/desktop_path").json() == {"desktop_path": "/home/user/Desktop"}
    x, y = http.get("/cursor_position").json()
    assert 0 <= x < CALC.screen.width and 0 <= y < CALC.screen.height
    assert http.get("/platform").text == "Linux"
    assert http.get("/terminal").json() == {"output": None, "status": "success"}
    assert http.get("/screenshot").content.startswith(b"\x89PNG")


def test_open_file_opens_its_app_even_one_the_env_lacks(osworld, tmp_path):
    book = make_workbook(tmp_path / "q3.xlsx", seed=7).read_bytes()
    assert upload(osworld, "/home/user/Documents/q3.xlsx", book).status_code == 200
    reply = osworld.http.post("/setup/open_file", json={"path": "/home/user/Documents/q3.xlsx"})
    assert reply.status_code == 200, reply.text
    assert any("libreoffice-calc" in w.wm_class for w in osworld.windows() if "q3.xlsx" in w.title)
    letter = make_document(tmp_path / "letter.docx", seed=1).read_bytes()  # calc env: no writer
    assert upload(osworld, "/home/user/letter.docx", letter).status_code == 200
    reply = osworld.http.post("/setup/open_file", json={"path": "~/letter.docx"})
    assert reply.status_code == 200, reply.text
    assert windows_titled(osworld, "letter.docx")
    missing = osworld.http.post("/setup/open_file", json={"path": "/home/user/none.xlsx"})
    assert missing.status_code == 404
    assert upload(osworld, "answers.json", b'{"answer": 42}\n').status_code == 200
    assert osworld.http.post("/setup/open_file", json={"path": "answers.json"}).status_code == 200
    assert any("mousepad" in w.wm_class for w in osworld.windows() if "answers.json" in w.title)
    reply = osworld.http.post("/setup/open_file", json={"path": "/home/user/Documents"})
    assert reply.status_code == 200, reply.text  # a folder: in the file manager, as xdg-open
    assert any("pcmanfm" in w.wm_class.lower() for w in osworld.windows())


def test_activate_and_close_windows(osworld, tmp_path):
    book = make_workbook(tmp_path / "second.xlsx", seed=8).read_bytes()
    assert upload(osworld, "second.xlsx", book).status_code == 200
    assert osworld.http.post("/setup/open_file", json={"path": "second.xlsx"}).status_code == 200

    def active() -> str:
        return osworld.http.post("/execute", json={
            "command": "xdotool getactivewindow getwindowname", "shell": True}).json()["output"]

    reply = osworld.http.post("/setup/activate_window", json={"window_name": "SALES.XLSX"})
    assert reply.status_code == 200 and reply.text == "Window activated successfully"
    assert active().startswith("sales.xlsx")
    strict = {"window_name": "second.xlsx", "strict": True}  # the whole title, so no match
    assert osworld.http.post("/setup/activate_window", json=strict).status_code == 404
    by_class = {"window_name": "LibreOffice-Calc", "by_class": True}
    assert osworld.http.post("/setup/activate_window", json=by_class).status_code == 200
    assert osworld.http.post("/setup/activate_window", json={}).status_code == 400
    reply = osworld.http.post("/setup/close_window", json={"window_name": "second.xlsx"})
    assert reply.status_code == 200
    deadline = time.monotonic() + 20
    while windows_titled(osworld, "second.xlsx") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not windows_titled(osworld, "second.xlsx") and windows_titled(osworld, "sales.xlsx")


def test_task_code_is_refused_without_the_option(local_desktop):
    for route, body in COMMAND_ROUTES.items():
        reply = local_desktop.http.post(route, json=body)
        assert reply.status_code == 403, route
        assert reply.json()["error"] == "commands" and "--allow-commands" in reply.json()["detail"]
    time.sleep(0.5)
    assert not (home_of(local_desktop) / "ran").exists()


def test_execute_runs_python_with_pyautogui_on_the_desktop(osworld):
    prefix = "import pyautogui; import time; pyautogui.FAILSAFE = False; {command}"  # OSWorld's
    reply = osworld.http.post("/execute", json={"command": [
        "python", "-c", prefix.format(command="print(pyautogui.size())")], "shell": False})
    assert reply.status_code == 200
    assert reply.json() == {"status": "success", "error": "", "returncode": 0,
                            "output": "Size(width=1920, height=1080)\n"}
    home = str(home_of(osworld))
    shell = osworld.http.post("/setup/execute", json={"command": "echo $HOME; pwd; echo no >&2; "
                                                      "exit 4", "shell": True}).json()
    assert shell == {"status": "success", "output": f"{home}\n{home}\n", "error": "no\n",
                     "returncode": 4}
    tilde = osworld.http.post("/execute", json={"command": ["ls", "-d", "~/Desktop"]}).json()
    assert tilde["output"] == f"{home}/Desktop\n"
    unknown = osworld.http.post("/execute", json={"command": "no-such-program --flag"})
    assert unknown.status_code == 500 and unknown.json()["status"] == "error"


def test_run_python_and_bash_script(osworld):
    ok = osworld.http.post("/run_python", json={"code": "print(6 * 7)"}).json()
    assert ok == {"status": "success", "message": "42\n", "need_more": False, "output": "42\n",
                  "error": "", "return_code": 0}
    failed = osworld.http.post("/run_python", json={"code": "1 / 0"}).json()
    assert failed["status"] == "error" and failed["return_code"] == 1
    assert "ZeroDivisionError" in failed["error"]
    assert osworld.http.post("/run_python", json={}).status_code == 400
    bash = osworld.http.post("/run_bash_script", json={
        "script": "pwd; echo err >&2; exit 3", "working_dir": "/home/user/Desktop"}).json()
    assert bash == {"status": "error", "output": f"{home_of(osworld)}/Desktop\nerr\n",
                    "error": "", "returncode": 3}
    gone = osworld.http.post("/run_bash_script", json={"script": "pwd", "working_dir": "nope"})
    assert gone.status_code == 400 and gone.json()["returncode"] == -1


def test_an_overrunning_script_is_killed_with_its_process_group(osworld):
    started = time.monotonic()
    reply = osworld.http.post("/run_bash_script", json={
        "script": "sleep 313 & sleep 314", "timeout": 1})
    assert reply.status_code == 500 and time.monotonic() - started < 10
    assert reply.json() == {"status": "error", "error": "", "returncode": -1,
                            "output": "Script execution timed out after 1 seconds"}
    sleeping = [p for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] in (["sleep", "313"], ["sleep", "314"])]
    assert sleeping == []


def test_a_reset_ends_an_orphan_an_app_left_without_the_desktops_mark(osworld):
    """Chromium's zygote children and crash handlers are forked away from the app and rewrite
    their environment: such a process carries no mark, and once orphaned it is no descendant of
    the server unless the server adopts orphans. A reset ends it all the same, and collects it:
    no zombie is left."""
    orphan = ["sleep", "315"]
    launch = osworld.http.post("/setup/launch", json={
        "command": f"env -u CUA_DESKTOP_ID setsid -f {' '.join(orphan)}", "shell": True})
    assert launch.status_code == 200
    found = lambda: [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == orphan]
    [pid] = [p.pid for p in wait_until(found, 10, what="the orphan to start")]
    try:
        osworld.reset(CALC, files=["sales.xlsx"], clear_home=False)
        assert not psutil.pid_exists(pid)  # neither running nor a zombie
    finally:
        for proc in found():
            proc.kill()


def test_launch_and_verified_execute(osworld):
    reply = osworld.http.post("/setup/launch", json={"command": ["bash", "-c",
                                                                 "sleep 0.5; touch ~/launched"]})
    assert reply.status_code == 200 and reply.text.endswith("launched successfully")
    passed = osworld.http.post("/setup/execute_with_verification", json={
        "command": "true", "verification": {"command_success": "test -f ~/launched",
                                            "window_exists": "sales.xlsx"},
        "max_wait_time": 10, "check_interval": 0.2})
    assert passed.status_code == 200 and passed.json()["verification"] == "passed"
    failed = osworld.http.post("/setup/execute_with_verification", json={
        "command": ["echo", "hi"], "verification": {"window_exists": "no such window"},
        "max_wait_time": 0.5, "check_interval": 0.1})
    assert failed.status_code == 500
    assert failed.json() | {"wait_time": 0} == {
        "status": "verification_failed", "output": "hi\n", "error": "", "returncode": 0,
        "verification": "failed", "wait_time": 0}


def test_wallpaper_is_what_was_set(osworld, tmp_path):
    missing = osworld.http.post("/setup/change_wallpaper", json={"path": "~/none.png"})
    assert missing.status_code == 404
    png = osworld.screenshot_png()
    assert upload(osworld, "/home/user/Pictures/wall.png", png).status_code == 200
    wall = {"path": "/home/user/Pictures/wall.png"}
    assert osworld.http.post("/setup/change_wallpaper", json=wall).status_code == 200
    assert osworld.http.post("/wallpaper").content == png


def chrome_pids(desktop) -> list[int]:
    """The desktop's processes named `chrome` (its profile is in the desktop's home)."""
    home = str(home_of(desktop))
    return [p.pid for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "chrome" and any(home in arg for arg in p.info["cmdline"] or [])]


def test_google_chrome_is_chromium_as_osworld_starts_and_stops_it(tmp_path):
    """`google-chrome` runs Chromium as a process named chrome with Chrome's profile folder;
    OSWorld's window names for Chrome find its window; `pkill chrome` ends it, and so does a
    reset, which also empties the home (and ends `nautilus`, a file manager on a folder)."""
    require_desktop_tools()
    with LocalBackend(allow_commands=True).start() as desktop:
        desktop.reset(load_env("osworld"))
        chrome = {"command": ["google-chrome", "--remote-debugging-port=1337"]}
        assert desktop.http.post("/setup/launch", json=chrome).status_code == 200
        wait_until(lambda: windows_titled(desktop, "Chromium"), 30, what="Chromium's window")
        assert chrome_pids(desktop)
        assert (home_of(desktop) / ".config" / "google-chrome" / "Default").is_dir()
        named = {"window_name": "Google Chrome"}
        assert desktop.http.post("/setup/activate_window", json=named).status_code == 200
        size = desktop.http.post("/window_size", data={"app_class_name": "google-chrome"})
        assert size.status_code == 200 and size.json()["width"] > 0
        assert desktop.http.post("/execute", json={"command": ["pkill", "chrome"]}).json()[
            "returncode"] == 0
        wait_until(lambda: not windows_titled(desktop, "Chromium") and not chrome_pids(desktop),
                   15, what="pkill chrome to end Chromium")

        assert desktop.http.post("/setup/launch", json=chrome).status_code == 200
        nautilus = {"command": ["nautilus", "~/Desktop"]}  # PCManFM stands in for it
        assert desktop.http.post("/setup/launch", json=nautilus).status_code == 200
        assert desktop.settle().settled  # the screen and the apps' processes came to rest
        assert windows_titled(desktop, "Chromium")
        assert [w.title for w in desktop.windows() if "pcmanfm" in w.wm_class.lower()] == [
            "Desktop"]
        desktop.upload(make_document(tmp_path / "notes.docx", seed=1))
        desktop.reset(load_env("osworld"))
        assert not chrome_pids(desktop) and desktop.windows() == []
        home = home_of(desktop)
        assert not (home / "notes.docx").exists() and (home / "Desktop").is_dir()
        assert not (home / ".config" / "google-chrome").exists()


def test_docker_desktops_run_task_commands_in_their_container(tmp_path):
    require_desktop_tools()
    docker_engine_or_skip()
    from cua.desktop.docker import DockerBackend
    with DockerBackend().start() as desktop:
        desktop.reset(CALC, [make_workbook(tmp_path / "sales.xlsx", seed=3)])
        probe = ("import os, pyautogui; "
                 "print(pyautogui.size(), os.path.realpath('/home/user'), os.environ['HOME'])")
        reply = desktop.http.post("/execute", json={"command": ["python", "-c", probe]})
        assert reply.status_code == 200 and reply.json()["output"] == (
            "Size(width=1920, height=1080) /tmp/desktop/home /tmp/desktop/home\n")
        written = desktop.http.post("/execute", json={  # a path OSWorld's tasks hard-code
            "command": "echo hi > /home/user/Desktop/x.txt", "shell": True})
        assert written.json()["returncode"] == 0
        got = desktop.http.post("/file", data={"file_path": "/home/user/Desktop/x.txt"})
        assert got.content == b"hi\n"
        assert upload(desktop, "/home/user/Desktop/y.txt", b"up").status_code == 200
        listed = desktop.http.post("/list_directory", json={"path": "/home/user/Desktop"}).json()
        assert [c["name"] for c in listed["directory_tree"]["children"]] == ["x.txt", "y.txt"]


def test_pyautogui_leaves_python_xlib_in_place():
    """pyautogui depends on python3-xlib, an old fork that installs the same `Xlib` package; an
    upgrade that installs it over python-xlib breaks cua (reinstall python-xlib to repair)."""
    import Xlib
    assert Xlib.__version__ >= (0, 33)
