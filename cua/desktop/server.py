"""The control server that runs inside every desktop (a local subprocess or a container).

cua's own API takes structured actions only, never code; OSWorld's VM server protocol
(`cua.desktop.osworld`) runs task code only where the server was started with --allow-commands.
Every request carries the desktop's bearer token, checked before its body is read; bodies are
capped (JSON and uploads, a 413 past the limit); one request acts at a time, waiting at most
`BUSY_WAIT_S` for the desktop and starting no action after its time budget (`Limits.execute_s`),
while `health` always answers."""

from __future__ import annotations

import argparse
import hmac
import json
import math
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from cua.actions import ActionError
from cua.content.check import ContentError
from cua.desktop import osworld, procs
from cua.desktop.api import (
    ExecuteReport,
    ExecuteRequest,
    Health,
    LaunchRequest,
    OpenRequest,
    ResetReport,
    ResetRequest,
    WindowInfo,
)
from cua.desktop.session import AppNotReady, Session
from cua.desktop.trim import IdleTrim, TrimWhenIdle
from cua.desktop.tunnel import Forwarder, port_socket
from cua.desktop.waiting import wait_until
from cua.desktop.x11 import XServerDown
from cua.records import SettleReport

BUSY_WAIT_S = 60.0  # how long a request waits for the one running before it to finish


class Busy(RuntimeError):
    """Another request holds the desktop for longer than a caller should wait."""


class TooLarge(ValueError):
    """A request body over its limit."""


ERRORS: dict[type[Exception], tuple[int, str]] = {
    ActionError: (422, "action"), ContentError: (422, "content"), AppNotReady: (504, "app"),
    XServerDown: (503, "x_server"), Busy: (503, "busy"), TooLarge: (413, "size"),
    osworld.CommandsDisabled: (403, "commands"),
    PermissionError: (403, "file"), FileNotFoundError: (404, "file"), OSError: (409, "file"),
    ValueError: (422, "env"), RuntimeError: (409, "state"), Exception: (500, "internal"),
}


@dataclass(frozen=True)
class Limits:
    json_bytes: int = 1 << 20      # a reset or actions request
    upload_bytes: int = 512 << 20  # one file into the home
    execute_s: float = 60.0        # no action of an actions request starts after this


def create_app(session: Session, token: str, limits: Limits = Limits(),
               allow_commands: bool = False) -> Guard:
    """The HTTP API over one Session (cua's and OSWorld's endpoints), behind the token and
    body-size guard; OSWorld's code-running endpoints only if `allow_commands`."""
    lock = threading.Lock()

    @contextmanager
    def exclusive():
        if not lock.acquire(timeout=BUSY_WAIT_S):
            raise Busy(f"the desktop has been busy with another request for {BUSY_WAIT_S:g} s")
        try:
            yield
        finally:
            lock.release()

    app = FastAPI(title="cua desktop", docs_url=None, redoc_url=None, openapi_url=None)
    for exc_type, (status, kind) in ERRORS.items():
        app.add_exception_handler(exc_type, _handler(status, kind))

    @app.get("/health")
    def health() -> Health:
        return session.health()  # reads state only: answers while an action runs

    @app.post("/reset")
    def reset(body: ResetRequest) -> ResetReport:
        with exclusive():
            return session.reset(body.env, body.files)

    @app.get("/screenshot")
    def screenshot() -> Response:
        with exclusive():
            return Response(session.screenshot(), media_type="image/png")

    @app.post("/actions")
    def execute(body: ExecuteRequest) -> ExecuteReport:
        with exclusive():
            return session.execute(body.actions, body.settle, limits.execute_s, body.observe)

    @app.post("/settle")
    def settle() -> SettleReport:
        with exclusive():
            return session.settle(ready=True)

    @app.get("/windows")
    def windows() -> list[WindowInfo]:
        with exclusive():
            return session.windows()

    @app.post("/windows/{window_id}/activate")
    def activate(window_id: str) -> None:
        with exclusive():
            session.activate(window_id)

    @app.post("/open")
    def open_file(body: OpenRequest) -> list[WindowInfo]:
        with exclusive():
            return session.open(body.path, body.app)

    @app.post("/launch")
    def launch(body: LaunchRequest) -> list[WindowInfo]:
        with exclusive():
            return session.launch(body.app)

    @app.put("/files/{path:path}")
    async def upload(path: str, request: Request) -> dict:
        with session.upload(path) as upload:
            async for chunk in request.stream():  # the guard stops it past the upload limit
                upload.write(chunk)
        return {"path": str(upload.target.relative_to(session.home)), "size": upload.size}

    @app.delete("/files")
    def clear_home() -> None:
        with exclusive():
            session.clear_home()

    @app.get("/files/{path:path}")
    def download(path: str) -> Response:
        target = session.resolve(path)
        if not target.is_file():
            raise FileNotFoundError(f"{path}: no such file on the desktop")
        return Response(target.read_bytes(), media_type="application/octet-stream")

    @app.post("/shutdown")
    def shutdown() -> dict:
        with exclusive():
            session.close()
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return {"ok": True}

    app.include_router(osworld.router(session, exclusive, allow_commands))
    return Guard(app, token, limits)


class Guard:
    """ASGI wrapper: the token before anything else, then the body limits (a JSON body is read
    here, at most `limits.json_bytes`; an upload, a PUT or OSWorld's multipart one, streams to its
    handler, which meets TooLarge past `limits.upload_bytes`)."""

    def __init__(self, app: FastAPI, token: str, limits: Limits):
        self.app, self.limits = app, limits
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            return await _reply(send, 401, "auth", "bad or missing desktop token")
        upload = scope["method"] == "PUT" or scope["path"] == osworld.UPLOAD_ROUTE
        limit = self.limits.upload_bytes if upload else self.limits.json_bytes
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > limit:
            return await _reply(send, 413, "size", f"request body over the {limit} byte limit")
        if upload:
            return await self.app(scope, _capped(receive, limit), send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return await _reply(send, 413, "size", f"request body over the {limit} byte "
                                    "limit")

        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay():  # the body once, then what the client does (a disconnect)
            return pending.pop() if pending else await receive()

        return await self.app(scope, replay, send)


def _capped(receive, limit: int):
    """`receive` that raises TooLarge once the body passes `limit` bytes (whatever was declared)."""
    seen = 0

    async def counted():
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise TooLarge(f"upload over the {limit} byte limit")
        return message
    return counted


async def _reply(send, status: int, kind: str, detail: str) -> None:
    """An error answered before the body is read: the connection closes, the body unread."""
    payload = json.dumps({"error": kind, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


def _handler(status: int, kind: str):
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        detail = str(exc) if status != 500 else f"{type(exc).__name__}: {exc}"
        return JSONResponse({"error": kind, "detail": detail}, status_code=status)
    return handle


def _exit_with_parent(parent_pid: int, server: uvicorn.Server, gone: threading.Event) -> None:
    """An owned desktop dies with its owner (a killed collector leaves no desktops behind)."""
    wait_until(lambda: os.getppid() != parent_pid, math.inf, interval_s=0.5,
               what="the owner to exit")
    gone.set()
    server.should_exit = True


def _read_token(path: Path) -> str:
    """The bearer token from `path`, which is removed: the token never sits in the environment
    or on disk where the desktop's apps could read it."""
    token = path.read_text().strip()
    path.unlink()
    return token


def _make_undumpable() -> None:
    """Hide this process's memory and environment from the desktop's own processes (same user):
    no ptrace, /proc/PID/{mem,environ} owned by root. Apps started later are unaffected."""
    procs.prctl(procs.PR_SET_DUMPABLE, 0)


def _listen(args: argparse.Namespace) -> socket.socket:
    """The listening socket: TCP on --host/--port, or the unix socket --unix-socket."""
    if args.unix_socket:
        args.unix_socket.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(args.unix_socket))
        args.unix_socket.chmod(0o666)  # its folder and the token are the access control
    else:  # IPPROTO_TCP said, or asyncio leaves Nagle on: each response's body, written after
        # its headers, then waits for the client's delayed ACK (40 ms per kept-alive request)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    sock.listen(128)  # connections queue from here on, before uvicorn starts serving
    return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token-file", type=Path, required=True,
                        help="file holding the desktop's bearer token; read, then deleted")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--unix-socket", type=Path, help="listen here instead of on TCP")
    parser.add_argument("--undumpable", action="store_true",
                        help="hide the server's memory from the desktop's processes (containers)")
    parser.add_argument("--root", type=Path, help="the desktop's state folder (default: a new "
                        "temp dir)")
    parser.add_argument("--id", default=os.environ.get("CUA_DESKTOP_ID") or secrets.token_hex(4))
    parser.add_argument("--display", help="X display to create (default: the first free one)")
    parser.add_argument("--ready-file", type=Path, help="where to write {port} once listening")
    parser.add_argument("--parent-pid", type=int, help="shut down when this process is gone")
    parser.add_argument("--max-upload-mb", type=int,
                        default=int(os.environ.get("CUA_MAX_UPLOAD_MB", Limits.upload_bytes >> 20)),
                        help="largest file a client may upload (env CUA_MAX_UPLOAD_MB)")
    parser.add_argument("--allow-commands", action="store_true",
                        help="run the code OSWorld's protocol sends (/execute, /setup/launch, "
                        "/run_python, …) as the desktop's user: for a container, or a host whose "
                        "user accepts task commands")
    parser.add_argument("--max-execute-s", type=float,
                        default=float(os.environ.get("CUA_MAX_EXECUTE_S", Limits.execute_s)),
                        help="an actions request starts no action after this many seconds "
                        "(env CUA_MAX_EXECUTE_S)")
    args = parser.parse_args(argv)
    try:
        token = _read_token(args.token_file)
    except OSError as exc:
        parser.error(f"cannot read --token-file: {exc}")
    if not token:
        parser.error(f"--token-file {args.token_file} is empty")
    if args.undumpable:
        _make_undumpable()
    root = args.root or Path(tempfile.mkdtemp(prefix=f"cua-{args.id}-"))
    session = Session(root, args.id, args.display, owns_descendants=True)
    sock = _listen(args)
    forwarders = [Forwarder.unix_to_tcp(port_socket(args.unix_socket.parent, port), port)
                  for port in osworld.GUEST_PORTS.values()] if args.unix_socket else []
    if args.ready_file:
        where = ({"socket": str(args.unix_socket)} if args.unix_socket
                 else {"port": sock.getsockname()[1]})
        partial = args.ready_file.with_suffix(".part")
        partial.write_text(json.dumps({**where, "pid": os.getpid()}))
        partial.replace(args.ready_file)
    limits = Limits(upload_bytes=args.max_upload_mb << 20, execute_s=args.max_execute_s)
    app = create_app(session, token, limits, args.allow_commands)
    config = uvicorn.Config(TrimWhenIdle(app, IdleTrim().start()), log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    owner_gone = threading.Event()
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid, server, owner_gone),
                         daemon=True).start()
    # uvicorn re-raises SIGTERM/SIGINT once it has stopped serving: exit through `finally`.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        server.run(sockets=[sock])
    finally:
        for forwarder in forwarders:
            forwarder.close()
        session.close()
        if owner_gone.is_set():  # nobody else will remove its folder; the next start of a
            shutil.rmtree(root, ignore_errors=True)  # local desktop sweeps its record


if __name__ == "__main__":
    main()
