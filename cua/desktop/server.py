"""The control server that runs inside every desktop (a local subprocess or a container).

Structured actions only, never code; every request carries the desktop's bearer token."""

from __future__ import annotations

import argparse
import hmac
import json
import math
import os
import secrets
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from cua.actions import ActionError
from cua.content.check import ContentError
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
from cua.desktop.waiting import wait_until

ERRORS: dict[type[Exception], tuple[int, str]] = {
    ActionError: (422, "action"), ContentError: (422, "content"), AppNotReady: (504, "app"),
    PermissionError: (403, "file"), FileNotFoundError: (404, "file"), ValueError: (422, "env"),
    RuntimeError: (409, "state"),
}


def create_app(session: Session, token: str) -> FastAPI:
    """The HTTP API over one Session. Requests are served one at a time."""
    lock = threading.Lock()

    def authorised(request: Request) -> None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "bad or missing desktop token")

    app = FastAPI(title="cua desktop", dependencies=[Depends(authorised)])

    for exc_type, (status, kind) in ERRORS.items():
        app.add_exception_handler(exc_type, _handler(status, kind))

    @app.get("/health")
    def health() -> Health:
        with lock:
            return session.health()

    @app.post("/reset")
    def reset(body: ResetRequest) -> ResetReport:
        with lock:
            return session.reset(body.env, body.files)

    @app.get("/screenshot")
    def screenshot() -> Response:
        with lock:
            return Response(session.screenshot(), media_type="image/png")

    @app.post("/execute")
    def execute(body: ExecuteRequest) -> ExecuteReport:
        with lock:
            return session.execute(body.actions, body.settle)

    @app.get("/windows")
    def windows() -> list[WindowInfo]:
        with lock:
            return session.windows()

    @app.post("/windows/{window_id}/activate")
    def activate(window_id: str) -> None:
        with lock:
            session.activate(window_id)

    @app.post("/open")
    def open_file(body: OpenRequest) -> list[WindowInfo]:
        with lock:
            return session.open(body.path, body.app)

    @app.post("/launch")
    def launch(body: LaunchRequest) -> list[WindowInfo]:
        with lock:
            return session.launch(body.app)

    @app.put("/files/{path:path}")
    async def upload(path: str, request: Request) -> dict:
        target = session.resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = await request.body()
        partial = target.with_name(f".{target.name}.part")
        partial.write_bytes(data)
        partial.replace(target)
        return {"path": str(target.relative_to(session.home)), "size": len(data)}

    @app.get("/files/{path:path}")
    def download(path: str) -> Response:
        target = session.resolve(path)
        if not target.is_file():
            raise FileNotFoundError(f"{path}: no such file on the desktop")
        return Response(target.read_bytes(), media_type="application/octet-stream")

    @app.post("/shutdown")
    def shutdown() -> dict:
        with lock:
            session.close()
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return {"ok": True}

    return app


def _handler(status: int, kind: str):
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": kind, "detail": str(exc)}, status_code=status)
    return handle


def _exit_with_parent(parent_pid: int, server: uvicorn.Server) -> None:
    """An owned desktop dies with its owner (a killed collector leaves no desktops behind)."""
    wait_until(lambda: os.getppid() != parent_pid, math.inf, interval_s=0.5,
               what="the owner to exit")
    server.should_exit = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--root", type=Path, help="the desktop's state folder (default: a new "
                        "temp dir)")
    parser.add_argument("--id", default=os.environ.get("CUA_DESKTOP_ID") or secrets.token_hex(4))
    parser.add_argument("--display", help="X display to create (default: the first free one)")
    parser.add_argument("--ready-file", type=Path, help="where to write {port} once listening")
    parser.add_argument("--parent-pid", type=int, help="shut down when this process is gone")
    args = parser.parse_args(argv)
    token = os.environ.get("CUA_TOKEN")
    if not token:
        parser.error("set CUA_TOKEN to the desktop's bearer token")
    root = args.root or Path(tempfile.mkdtemp(prefix=f"cua-{args.id}-"))
    session = Session(root, args.id, args.display)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)  # connections queue from here on, before uvicorn starts serving
    if args.ready_file:
        partial = args.ready_file.with_suffix(".part")
        partial.write_text(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}))
        partial.replace(args.ready_file)
    config = uvicorn.Config(create_app(session, token), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid, server),
                         daemon=True).start()
    # uvicorn re-raises SIGTERM/SIGINT once it has stopped serving: exit through `finally`.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        server.run(sockets=[sock])
    finally:
        session.close()


if __name__ == "__main__":
    main()
