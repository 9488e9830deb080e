"""The control server under hostile input, on a real local desktop: the token before the body,
capped bodies and requests, uploads that cannot be redirected out of the home, health answering
during a long action, a dead X server as a typed error, a hung one as down in bounded time, and
no 500 for any request."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cua.actions import Wait
from cua.content.documents import make_workbook
from cua.desktop import procs, registry, server
from cua.desktop.api import MAX_ACTIONS
from cua.desktop.client import DesktopError
from cua.desktop.local import LocalBackend
from cua.desktop.x11 import XStack
from cua.envspec import Screen, load_env
from tests.conftest import require_desktop_tools

CALC = load_env("calc")


@pytest.fixture
def ready(local_desktop, tmp_path):
    local_desktop.reset(CALC, [make_workbook(tmp_path / "sales.xlsx", seed=3)])
    return local_desktop


def home_of(desktop) -> Path:
    return Path(registry.load(desktop.id).root) / "home"


def raw(desktop, headers: dict[str, str] | None = None) -> httpx.Client:
    """A client of the desktop's server with only the given headers (no token by default)."""
    return httpx.Client(base_url=desktop.base_url, headers=headers or {}, timeout=30)


def test_uploads_cannot_be_redirected_out_of_the_home(local_desktop, tmp_path):
    home, outside = home_of(local_desktop), tmp_path / "outside.txt"
    outside.write_text("precious")
    (home / ".up.txt.part").symlink_to(outside)          # the old temporary name
    local_desktop.upload(Path(__file__), "up.txt")
    assert outside.read_text() == "precious"
    assert (home / "up.txt").read_bytes() == Path(__file__).read_bytes()
    (home / "escape").symlink_to(tmp_path)                # a folder that leads out
    (home / "passwd").symlink_to(outside)                 # a file that leads out
    for remote in ("escape/x.txt", "passwd", "%2E%2E/x.txt"):
        with pytest.raises(DesktopError, match="outside the desktop's home"):
            local_desktop.upload(Path(__file__), remote)
    assert outside.read_text() == "precious" and not (tmp_path / "x.txt").exists()
    leftovers = [p for p in home.iterdir() if p.name.endswith(".part") and not p.is_symlink()]
    assert not leftovers  # no temporary file left behind


def post_raw(desktop, path: str, size: int, token: str | None = None,
             send_body: bool = True) -> tuple[str, int]:
    """POST a `size`-byte JSON body over a bare socket (or only its headers), stopping when the
    server hangs up; returns what the server answered and how many body bytes went out."""
    url = httpx.URL(desktop.base_url)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"{auth}Content-Length: {size}\r\n\r\n".encode())
        block, sent = b"[" * 2**20, 0
        try:
            while send_body and sent < size:
                sock.sendall(block[:size - sent])
                sent += min(len(block), size - sent)
        except OSError:
            pass  # the server answered and hung up: it never wanted the body
        reply = b""
        try:
            while data := sock.recv(4096):  # the server closes the connection after its answer
                reply += data
        except ConnectionResetError:
            pass  # it hung up on a body it did not read
        return reply.decode(errors="replace"), sent


def test_the_servers_connections_send_without_waiting_for_acks():
    """The listening socket is one asyncio turns Nagle off for, on each connection (uvicorn
    writes a response's headers, then its body: with Nagle on, the body waited for the client's
    delayed ACK, 40 ms per request on a kept-alive connection)."""
    listener = server._listen(argparse.Namespace(unix_socket=None, host="127.0.0.1", port=0))

    async def nodelay_of_a_connection() -> int:
        accepted = asyncio.get_running_loop().create_future()

        def on_connect(reader, writer):
            accepted.set_result(writer.get_extra_info("socket").getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()
        async with await asyncio.start_server(on_connect, sock=listener):
            _, writer = await asyncio.open_connection(*listener.getsockname())
            writer.close()
            return await asyncio.wait_for(accepted, 10)
    assert asyncio.run(nodelay_of_a_connection())


def test_the_token_is_checked_before_the_body_is_read(local_desktop):
    server = psutil.Process(registry.load(local_desktop.id).pid)
    size = 400 * 2**20
    reply, sent = post_raw(local_desktop, "/reset", size)
    assert reply.startswith("HTTP/1.1 401") and sent < size
    assert server.memory_info().rss < 300 * 2**20
    for path in ("/docs", "/openapi.json", "/redoc", "/health"):
        assert raw(local_desktop).get(path).status_code == 401
    token = local_desktop.http.headers["Authorization"].removeprefix("Bearer ")
    reply, _ = post_raw(local_desktop, "/actions", 2 * 2**20, token, send_body=False)
    assert reply.startswith("HTTP/1.1 413") and '"error": "size"' in reply  # not waiting for it
    with raw(local_desktop, {"Authorization": f"Bearer {token}"}) as ok:
        assert ok.get("/openapi.json").status_code == 404
        assert ok.get("/health").status_code == 200  # the server is fine


def test_the_token_is_in_no_environment_command_line_or_file(ready):
    record = registry.load(ready.id)
    server = psutil.Process(record.pid)
    for process in (server, *server.children(recursive=True)):  # the server, X, the apps
        if process.status() == psutil.STATUS_ZOMBIE:
            continue  # an orphan the server adopted, ended since the last reset: nothing to read
        assert record.token not in " ".join(process.cmdline())
        assert record.token not in "".join(process.environ().values())
    assert not (Path(record.root) / "token").exists()


def test_requests_are_capped_up_front(ready):
    before = ready.screenshot_png()
    too_many = ready.http.post("/actions", json={"actions": [{"type": "wait"}] * 100})
    assert too_many.status_code == 422 and str(MAX_ACTIONS) in too_many.text
    long_text = ready.http.post("/actions", json={"actions": [{"type": "type",
                                                               "content": "x" * 100_000}]})
    assert long_text.status_code == 422 and "10000-character limit" in long_text.text
    assert ready.screenshot_png() == before  # nothing ran


def test_a_request_starts_no_action_past_its_time_budget(monkeypatch, tmp_path):
    require_desktop_tools()
    monkeypatch.setenv("CUA_MAX_EXECUTE_S", "1.5")
    with LocalBackend().start() as desktop:
        desktop.reset(CALC, [make_workbook(tmp_path / "sales.xlsx", seed=3)])
        report = desktop.execute([Wait()] * 10)
        *done, stopped = report.results
        assert all(r.ok for r in done) and 1 <= len(done) < 10
        assert not stopped.ok and stopped.error == (
            f"not run: the request's 1.5 s budget was spent after {len(done)} of 10 actions")
        assert desktop.health().ok


def test_health_answers_while_an_action_runs(ready):
    worker = threading.Thread(target=ready.execute, args=([Wait()] * 4,))
    worker.start()
    time.sleep(0.5)
    try:
        started = time.monotonic()
        health = ready.health()
        assert health.ok and time.monotonic() - started < 2.0
        assert worker.is_alive()  # the action was still running
    finally:
        worker.join()


def test_a_dead_x_server_is_a_typed_error_and_the_next_call_works(ready, tmp_path):
    for pid in procs.marked_pids(ready.id):
        if procs.comm(pid) == "Xvfb":
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    with pytest.raises(DesktopError) as caught:
        ready.screenshot_png()
    assert caught.value.kind == "x_server"
    assert not ready.health().x_server  # the same connection still answers
    ready.reset(CALC, [make_workbook(tmp_path / "again.xlsx", seed=4)])
    assert ready.health().ok and ready.screenshot_png().startswith(b"\x89PNG")


def test_an_x_server_that_stops_answering_is_down_within_the_timeout(tmp_path):
    require_desktop_tools()
    x = XStack({"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, tmp_path)
    x.start(Screen())
    xvfb = x.procs[0].pid
    try:
        assert x.alive(timeout_s=5)
        os.kill(xvfb, signal.SIGSTOP)  # accepts connections, answers nothing
        start = time.monotonic()
        assert not x.alive(timeout_s=0.5)
        assert time.monotonic() - start < 2
        os.kill(xvfb, signal.SIGCONT)
        assert x.alive(timeout_s=5)
    finally:
        os.kill(xvfb, signal.SIGCONT)
        x.stop()


PATHS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]),
       route=st.sampled_from(["/files/", "/actions", "/open", "/launch", "/reset",
                              "/windows/", "/screenshot", "/health", "/", "/execute", "/file",
                              "/setup/upload", "/setup/open_file", "/list_directory",
                              "/window_size", "/setup/close_window"]),
       suffix=PATHS, body=JSON)
def test_hostile_requests_get_no_500_and_write_nothing_outside_home(local_desktop, method,
                                                                    route, suffix, body):
    home = home_of(local_desktop)
    root = home.parent
    named = Path(os.path.normpath(home / suffix))  # where a write to this path would land
    outside = not named.is_relative_to(home)
    existed = named.exists() if outside else False
    entries = sorted(p.name for p in root.iterdir())
    url = route + (suffix if route.endswith("/") else "")
    try:
        response = local_desktop.http.request(method, url, json=body, timeout=30)
    except httpx.InvalidURL:
        return
    assert response.status_code != 500, (method, url, response.text)  # typed errors only
    assert sorted(p.name for p in root.iterdir()) == entries
    if outside:
        assert named.exists() == existed, named
