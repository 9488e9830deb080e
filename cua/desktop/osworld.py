"""OSWorld's VM server protocol on a cua desktop: the endpoints that desktop-env's SetupController,
PythonController and getters call, with OSWorld's request and response shapes, so that they run
unmodified against the control server (its token and body limits apply as to cua's own API).

Paths name files in the desktop's home: `/home/user/…` (OSWorld's home), `~/…` and relative paths
are taken from it, and whatever lies outside it, once links are followed, is refused (403). The
endpoints that run code (`/execute*`, `/setup/execute*`, `/setup/launch`, `/run_python`,
`/run_bash_script`) answer 403 unless the server runs with `--allow-commands`: a container is the
sandbox OSWorld's VM is; on this host the user has to say that task commands may run here. They
run as the desktop's processes (its DISPLAY, HOME, session bus; cua's Python, which has pyautogui,
first on PATH), in the home, and are killed with their process group when they overrun."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from Xlib.error import XError

from cua.content.check import content_kind
from cua.desktop import atspi, procs
from cua.desktop.ops import OSWORLD_HOME, ActivateWindow, find_window, in_osworld_home
from cua.desktop.session import Session
from cua.envspec import APP_CONTENT

UPLOAD_ROUTE = "/setup/upload"  # multipart: the server's upload limit applies, not the JSON one
EXECUTE_TIMEOUT_S = 120.0       # /execute and /setup/execute, as OSWorld
PYTHON_TIMEOUT_S = 30.0         # /run_python, as OSWorld
VERIFY_TIMEOUT_S = 5.0          # a verification command of /setup/execute_with_verification
CHUNK = 1 << 20
# Ports inside the desktop that OSWorld's controllers and getters reach besides the server's:
# Chrome's DevTools (a task's `socat` relays it from Chrome's own port) and VLC's web interface.
# Docker desktops, which have no published ports, offer each as a unix socket beside the control
# socket (cua.desktop.tunnel); the scorer's Bridge forwards them.
GUEST_PORTS = {"chromium_port": 9222, "vlc_port": 8080}
# cua desktops have Chromium where OSWorld's have Google Chrome (`google-chrome` runs Chromium:
# cua.desktop.apps.program_stand_ins): a window OSWorld names by Chrome's title or class is
# Chromium's.
CHROME_WINDOW = {"Google Chrome": "Chromium", "google-chrome": "chromium-browser"}
CHROME_APP = {"Chromium": "Google Chrome"}  # its application in the accessibility tree, likewise
# The focused tab of GNOME Terminal's active window, whose text /terminal answers (as OSWorld).
TERMINAL_APP = "gnome-terminal-server"
TERMINAL_XPATH = (f'//application[@name="{TERMINAL_APP}"]/frame[@st:active="true"]'
                  '//terminal[@st:focused="true"]')
TERMINAL_BUDGET_S = 10.0


class CommandsDisabled(PermissionError):
    """A request to run code on a desktop whose server was not started with --allow-commands."""


class Command(BaseModel):
    command: str | list[str] = ""  # a string is split like a shell would, unless `shell`
    shell: bool = False


class Verification(BaseModel):
    window_exists: str | None = None    # a window whose title contains this (any case)
    command_success: str | None = None  # a shell command that exits 0


class VerifiedCommand(Command):
    verification: Verification = Verification()
    max_wait_time: float = Field(10, ge=0, le=600)
    check_interval: float = Field(1, gt=0, le=60)


class PathBody(BaseModel):
    path: str = ""


class WindowBody(BaseModel):
    window_name: str = ""
    strict: bool = False    # the whole title (or class), case-sensitively
    by_class: bool = False  # match WM_CLASS instead of the title


class PythonBody(BaseModel):
    code: str = ""


class BashBody(BaseModel):
    script: str = ""
    timeout: float = Field(100, gt=0, le=3600)
    working_dir: str | None = None


def router(session: Session, exclusive: Callable[[], AbstractContextManager],
           allow_commands: bool) -> APIRouter:
    """OSWorld's endpoints over `session`; `exclusive` holds the desktop for a request that
    changes its apps (as cua's own endpoints do)."""
    api = APIRouter()
    wallpaper: list[Path] = []  # the image /setup/change_wallpaper named last

    def local(path: str) -> Path:
        return desktop_path(session, path)

    def commands() -> dict[str, str]:
        """The environment code runs in; refused unless the server allows commands."""
        if not allow_commands:
            raise CommandsDisabled("this desktop runs no task commands: start its server with "
                                   "--allow-commands (LocalBackend(allow_commands=True)) to let "
                                   "them run on this host; docker desktops always allow them")
        python, path = os.path.dirname(sys.executable), session.env["PATH"]
        return {**session.env, "PATH": path if path.startswith(f"{python}:") else
                f"{python}:{path}"}

    def run(command: Command, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess:
        return run_to_end(argv(command, session.home), command.shell, env, session.home,
                          timeout_s)

    @api.post("/execute")
    @api.post("/setup/execute")
    @api.post("/execute_with_verification")
    @api.post("/setup/execute_with_verification")
    def execute(body: VerifiedCommand) -> JSONResponse:
        """Run a command to its end; then, if asked, wait for its effect to show."""
        env = commands()
        try:
            done = run(body, env, EXECUTE_TIMEOUT_S)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            return JSONResponse({"status": "error", "message": str(exc)}, 500)
        check = body.verification
        if check.window_exists is None and check.command_success is None:
            return JSONResponse(outcome(done))

        def verified() -> bool:
            if check.window_exists is not None and not any(
                    check.window_exists.lower() in w.title.lower() for w in session.windows()):
                return False
            if check.command_success is not None:
                try:
                    ran = run(Command(command=check.command_success, shell=True), env,
                              VERIFY_TIMEOUT_S)
                except (OSError, subprocess.SubprocessError):
                    return False
                return ran.returncode == 0
            return True

        start = time.monotonic()
        while time.monotonic() - start < body.max_wait_time:
            if verified():
                return JSONResponse({**outcome(done), "verification": "passed",
                                     "wait_time": time.monotonic() - start})
            time.sleep(body.check_interval)
        return JSONResponse({**outcome(done), "status": "verification_failed",
                             "verification": "failed", "wait_time": body.max_wait_time}, 500)

    @api.post("/setup/launch")
    def launch(body: Command) -> Response:
        env = commands()
        command = argv(body, session.home)
        try:
            subprocess.Popen(command, shell=body.shell, env=env, cwd=session.home,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError) as exc:
            return JSONResponse({"status": "error", "message": str(exc)}, 500)
        shown = command if body.shell else " ".join(command)
        return PlainTextResponse(f"{shown} launched successfully")

    @api.post("/run_python")
    def run_python(body: PythonBody) -> JSONResponse:
        env = commands()
        if not body.code:
            return JSONResponse({"status": "error", "message": "Code not supplied!"}, 400)
        with script_file(session, body.code, ".py") as script:
            try:
                done = run_to_end([sys.executable, script], False, env, session.home,
                                  PYTHON_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                return JSONResponse({"status": "error", "error": "TimeoutExpired",
                                     "message": "Execution timeout: Code took too long to execute",
                                     "need_more": False, "output": None}, 500)
        error = done.stderr or (f"Process exited with code {done.returncode}"
                                if done.returncode else "")
        return JSONResponse({
            "status": "error" if done.returncode else "success",
            "message": "\n".join(part for part in (done.stdout, error) if part),
            "need_more": False, "output": done.stdout, "error": error,
            "return_code": done.returncode})

    @api.post("/run_bash_script")
    def run_bash_script(body: BashBody) -> JSONResponse:
        env = commands()

        def failed(output: str, status: int) -> JSONResponse:
            return JSONResponse({"status": "error", "output": output, "error": "",
                                 "returncode": -1}, status)

        if not body.script:
            return failed("Script not supplied!", 400)
        cwd = local(body.working_dir) if body.working_dir else session.home
        if not cwd.is_dir():
            return failed(f"Working directory does not exist: {body.working_dir}", 400)
        script = body.script if "#!/bin/bash" in body.script else f"#!/bin/bash\n\n{body.script}"
        with script_file(session, script, ".sh") as path:
            try:
                done = run_to_end(["bash", path], False, env, cwd, body.timeout,
                                  stderr=subprocess.STDOUT)
            except subprocess.TimeoutExpired:
                return failed(f"Script execution timed out after {body.timeout:g} seconds", 500)
        return JSONResponse({"status": "error" if done.returncode else "success",
                             "output": done.stdout, "error": "", "returncode": done.returncode})

    @api.post("/file")
    def file(file_path: Annotated[str | None, Form()] = None) -> Response:
        if not file_path:
            return JSONResponse({"error": "file_path is required"}, 400)
        target = local(file_path)
        if not target.is_file():
            return JSONResponse({"error": "File not found"}, 404)
        return FileResponse(target, filename=target.name)

    @api.post(UPLOAD_ROUTE)
    async def upload(request: Request) -> Response:
        async with request.form(max_files=1, max_fields=1) as form:
            file_path, data = form.get("file_path"), form.get("file_data")
            if not isinstance(file_path, str) or not isinstance(data, UploadFile):
                return JSONResponse({"error": "file_path and file_data are required"}, 400)
            size = await run_in_threadpool(save, session, local(file_path), data.file)
        return PlainTextResponse(f"File Uploaded: {size} bytes")

    @api.post("/list_directory")
    def list_directory(body: PathBody) -> JSONResponse:
        if not body.path:
            return JSONResponse({"error": "Missing 'path' parameter"}, 400)
        start = local(body.path)
        if not start.is_dir():
            return JSONResponse({"error": "The provided path is not a directory"}, 400)
        return JSONResponse({"directory_tree": tree(start, os.path.basename(body.path))})

    @api.post("/desktop_path")
    def desktop() -> JSONResponse:
        if not (session.home / "Desktop").is_dir():
            return JSONResponse({"error": "desktop path not found"}, 404)
        return JSONResponse({"desktop_path": str(OSWORLD_HOME / "Desktop")})

    @api.post("/setup/open_file")
    def open_file(body: PathBody) -> Response:
        if not body.path:
            return PlainTextResponse("Path not supplied!", 400)
        target = local(body.path)
        if not target.exists():
            return PlainTextResponse(f"Application/file not found: {body.path}", 404)
        with exclusive():
            if target.is_dir():  # xdg-open shows a folder in the file manager
                session.open_folder(str(target))
            else:
                session.open(str(target), app_for(session, target))
        return PlainTextResponse("File opened and window activated successfully")

    def on_window(body: WindowBody, act: Callable[[str], None], done: str) -> Response:
        if not body.window_name:
            return PlainTextResponse("window_name required", 400)
        with exclusive():
            windows = session.windows()
            window = next(filter(None, (find_window(windows, ActivateWindow(
                name, body.strict, body.by_class)) for name in _chrome_aliases(body.window_name))),
                None)
            if window is None:
                return PlainTextResponse(f"Window {body.window_name} not found", 404)
            act(window.id)
        return PlainTextResponse(done)

    @api.post("/setup/activate_window")
    def activate_window(body: WindowBody) -> Response:
        return on_window(body, session.activate, "Window activated successfully")

    @api.post("/setup/close_window")
    def close_window(body: WindowBody) -> Response:
        return on_window(body, session.x.close, "Window closed successfully.")

    @api.post("/screen_size")
    def screen_size() -> dict:
        width, height = session.x.size()
        return {"width": width, "height": height}

    @api.post("/window_size")
    def window_size(app_class_name: Annotated[str | None, Form()] = None) -> JSONResponse:
        if not app_class_name:
            return JSONResponse({"error": "app_class_name is required"}, 400)
        names = {n.lower() for n in _chrome_aliases(app_class_name)}
        for window in session.windows():
            if names & set(window.wm_class.lower().split(".")):
                try:
                    width, height = session.x.size(window.id)
                except XError:
                    continue  # it closed meanwhile
                return JSONResponse({"width": width, "height": height})
        return JSONResponse({"error": f"no window of class {app_class_name}"}, 404)

    @api.get("/cursor_position")
    def cursor_position() -> list[int]:
        return list(session.x.pointer())

    @api.get("/platform")
    def platform() -> PlainTextResponse:
        return PlainTextResponse("Linux")

    @api.get("/terminal")
    def terminal() -> JSONResponse:
        if session.spec is not None:  # what was just typed has reached the screen (and the tree)
            with exclusive():
                session.settle()
        try:
            tree = atspi.read_tree(session.env, {}, TERMINAL_BUDGET_S, only={TERMINAL_APP})
        except OSError as exc:
            return JSONResponse({"status": "error", "message": f"{type(exc).__name__}: {exc}"},
                                503)
        tabs = tree.xpath(TERMINAL_XPATH, namespaces=atspi.NS)
        output = (tabs[0].text or "").rstrip() if len(tabs) == 1 else None
        return JSONResponse({"output": output, "status": "success"})

    @api.get("/accessibility")
    def accessibility() -> JSONResponse:
        try:
            return JSONResponse({"AT": atspi.tree_xml(session.env, CHROME_APP)})
        except OSError as exc:  # no bus, or it stopped answering
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 503)

    @api.post("/setup/change_wallpaper")
    def change_wallpaper(body: PathBody) -> PlainTextResponse:
        if not body.path:
            return PlainTextResponse("Path not supplied!", 400)
        target = local(body.path)
        if not target.is_file():
            return PlainTextResponse(f"File not found: {body.path}", 404)
        wallpaper[:] = [target]
        return PlainTextResponse("Wallpaper changed successfully")

    @api.post("/wallpaper")
    def get_wallpaper() -> Response:
        if not wallpaper or not wallpaper[0].is_file():
            return JSONResponse({"error": "Wallpaper file not found"}, 404)
        return FileResponse(wallpaper[0], media_type="image/png")

    return api


def _chrome_aliases(name: str) -> list[str]:
    """`name`, then the same with Chromium's title or class for Chrome's."""
    names = [name]
    for chrome, chromium in CHROME_WINDOW.items():
        if chrome in name:
            names.append(name.replace(chrome, chromium))
    return names


def desktop_path(session: Session, path: str) -> Path:
    """The file an OSWorld path names: `/home/user/…`, `~/…` and relative paths are in the
    desktop's home; PermissionError for anything outside it once links are followed."""
    # an absolute path stays as it is, and must be in the home
    return session.resolve(str(in_osworld_home(path)))


def argv(command: Command, home: Path) -> str | list[str]:
    """What to run: a string split like a shell would unless `shell`; `~/` args in the home."""
    if isinstance(command.command, str):
        if command.shell:
            return command.command
        args = shlex.split(command.command)
    else:
        args = list(command.command)
    return [f"{home}/{a[2:]}" if a.startswith("~/") else a for a in args]


def run_to_end(command: str | list[str], shell: bool, env: dict[str, str], cwd: Path,
               timeout_s: float, stderr: int = subprocess.PIPE) -> subprocess.CompletedProcess:
    """Run `command` to its end in a session of its own; on timeout its whole process group is
    killed and TimeoutExpired raised."""
    with subprocess.Popen(command, shell=shell, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=stderr, text=True, errors="replace",
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            procs.stop(proc, grace_s=0.5)
            raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def outcome(done: subprocess.CompletedProcess) -> dict:
    return {"status": "success", "output": done.stdout, "error": done.stderr,
            "returncode": done.returncode}


@contextmanager
def script_file(session: Session, text: str, suffix: str) -> Iterator[str]:
    """`text` in a temporary file in the desktop's temp folder, for one run."""
    with tempfile.NamedTemporaryFile("w", suffix=suffix, dir=session.env["TMPDIR"]) as script:
        script.write(text)
        script.flush()
        yield script.name


def save(session: Session, target: Path, data) -> int:
    """Copy the file object `data` to `target` through the session's safe `Upload`."""
    with session.upload(str(target)) as upload:
        while chunk := data.read(CHUNK):
            upload.write(chunk)
    return upload.size


def app_for(session: Session, target: Path) -> str:
    """The app that opens `target`: the env's for its kind, else the first that can (OSWorld's
    VM has every app, a cua env only those it names)."""
    kind = content_kind(target)
    if session.spec is not None:
        with suppress(ValueError):  # none of the env's apps opens this kind
            return session.spec.app_for(kind)
    return next(app for app, kinds in APP_CONTENT.items() if kind in kinds)


def tree(folder: Path, name: str) -> dict:
    """OSWorld's directory tree: folders (not links to them) recursively, all else files."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        return {"error": str(exc)}
    return {"type": "directory", "name": name, "children": [
        tree(Path(e.path), e.name) if e.is_dir(follow_symlinks=False)
        else {"type": "file", "name": e.name} for e in entries]}
