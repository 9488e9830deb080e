"""Shared fixtures: real content from ../shared/content, real desktops on real X servers."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SHARED_CONTENT = Path(__file__).resolve().parents[1].parent / "shared" / "content"
DESKTOP_TOOLS = ("Xvfb", "openbox", "soffice", "xdotool", "wmctrl", "xclip", "dbus-daemon")


@pytest.fixture(scope="session")
def shared_content() -> Path:
    if not SHARED_CONTENT.is_dir():
        pytest.skip(f"{SHARED_CONTENT} is absent: real-content tests need the shared folder "
                    "beside the checkout (it never ships with the product)")
    return SHARED_CONTENT


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory, monkeypatch):
    """Desktop records of the tests stay out of the user's state folder."""
    monkeypatch.setenv("CUA_STATE_DIR", str(tmp_path_factory.getbasetemp() / "desktops"))


def require_desktop_tools() -> None:
    missing = [tool for tool in DESKTOP_TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"desktop tools missing ({', '.join(missing)}): run scripts/install-system.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def docker_engine_or_skip() -> None:
    """Skip (fail in CI) unless a Docker Engine API answers and the desktop image exists."""
    try:
        import docker
        client = docker.from_env()
        client.ping()
        client.images.get("cua/desktop:dev")
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable engine here
        message = (f"no Docker engine with image cua/desktop:dev ({type(exc).__name__}: {exc}); "
                   "run scripts/setup-podman.sh and scripts/build-image.sh")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(params=["local", "docker"])
def backend_name(request) -> str:
    require_desktop_tools()
    if request.param == "docker":
        docker_engine_or_skip()
    return request.param


@pytest.fixture
def desktop(backend_name):
    from cua.desktop import registry
    desktop = registry.backend(backend_name).start()
    yield desktop
    desktop.close()


@pytest.fixture
def local_desktop():
    require_desktop_tools()
    from cua.desktop.local import LocalBackend
    desktop = LocalBackend().start()
    yield desktop
    desktop.close()


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory):
    """`transformers serve` of cua's tiny Qwen2.5-VL on 127.0.0.1 (its replies are gibberish)."""
    pytest.importorskip("transformers", reason="needs the train extra (pip install -e '.[train]')")
    from cua.recipes import ServeConfig
    from cua.train.serve import ModelServer
    from cua.train.tinymodel import build_tiny_model

    folder = tmp_path_factory.mktemp("tiny")
    model = build_tiny_model(folder / "model")
    server = ModelServer(ServeConfig(model=model), folder / "serve.log").start()
    yield server
    server.stop()


def wait_for_change(desktop, remote: str, before: bytes, timeout_s: float = 30.0) -> bytes:
    """Poll a file on the desktop until its bytes differ from `before` (a save finished)."""
    previous = before
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = desktop.download(remote)
        if data != before and data == previous:  # changed, and the same twice: written out
            return data
        previous = data
        time.sleep(0.25)
    raise AssertionError(f"{remote} did not change within {timeout_s} s")


def chat_reply(text: str) -> dict:
    """An OpenAI chat completion whose message is `text`."""
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


class ChatDouble:
    """An OpenAI-compatible endpoint on 127.0.0.1 that records each request and answers it
    with the next scripted (status, body, delay)."""

    def __init__(self, script):
        self.script, self.requests = list(script), []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                double.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status, body, delay = double.script.pop(0)
                time.sleep(delay)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except BrokenPipeError:
                    pass  # the client timed out and left

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def double():
    """Makes `ChatDouble`s from scripts; closes them after the test."""
    made = []

    def make(*script):
        made.append(ChatDouble(script))
        return made[-1]
    yield make
    for d in made:
        d.close()
