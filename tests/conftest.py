"""Shared fixtures: real content from ../shared/content, real desktops on real X servers."""

from __future__ import annotations

import os
import shutil
import time
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
    from cua.train.serve import TransformersServer
    from cua.train.tinymodel import build_tiny_model

    folder = tmp_path_factory.mktemp("tiny")
    server = TransformersServer(build_tiny_model(folder / "model"), folder / "serve.log").start()
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
