"""Where running desktops are recorded, so separate CLI calls can find them by id."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Literal, Protocol

import httpx
from pydantic import BaseModel

from cua.desktop.client import Desktop, DesktopError, http_client
from cua.envspec import EnvSpec

BackendName = Literal["local", "docker"]
BACKENDS: dict[BackendName, str] = {"local": "cua.desktop.local:LocalBackend",
                                    "docker": "cua.desktop.docker:DockerBackend"}


class DesktopRecord(BaseModel):
    id: str
    backend: BackendName
    base_url: str
    token: str
    pid: int | None = None        # local: the control server's process
    root: str | None = None       # local: the desktop's state folder; docker: its socket folder
    container: str | None = None  # docker: the container's id


class Backend(Protocol):
    name: str

    def start(self, network: bool = False, sudo: bool = False) -> Desktop: ...

    def stop(self, desktop_id: str) -> None: ...


def state_dir() -> Path:
    base = os.environ.get("CUA_STATE_DIR") or Path(os.environ.get(
        "XDG_STATE_HOME", Path.home() / ".local" / "state")) / "cua" / "desktops"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(record: DesktopRecord) -> None:
    target = state_dir() / f"{record.id}.json"
    partial = target.with_suffix(".part")
    partial.write_text(record.model_dump_json(indent=1))
    partial.chmod(0o600)
    partial.replace(target)


def load(desktop_id: str) -> DesktopRecord:
    path = state_dir() / f"{desktop_id}.json"
    if not path.exists():
        raise DesktopError("backend", f"no desktop {desktop_id!r} (see `cua desktop list`)")
    return DesktopRecord.model_validate_json(path.read_text())


def forget(desktop_id: str) -> None:
    (state_dir() / f"{desktop_id}.json").unlink(missing_ok=True)


def records() -> list[DesktopRecord]:
    return [DesktopRecord.model_validate_json(p.read_text())
            for p in sorted(state_dir().glob("*.json"))]


def backend(name: str, **options) -> Backend:
    """The backend called `name`, imported lazily (the docker SDK is an optional extra)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


def desktop_for(env: EnvSpec, current: Desktop | None, backend_name: str,
                **options) -> Desktop:
    """`current` if it was started for `env`'s network and sudo needs, else a new desktop on
    `backend_name` made with `options` (`current` is closed first)."""
    if current is not None and (current.network, current.sudo) == (env.network, env.sudo):
        return current
    if current is not None:
        current.close()
    return backend(backend_name, **options).start(network=env.network, sudo=env.sudo)


def request_shutdown(record: DesktopRecord) -> None:
    """Ask a desktop's server to stop its apps and exit (best effort: it may be dead already)."""
    try:
        with http_client(record.base_url, record.token, timeout_s=15) as http:
            http.post("/shutdown")
    except httpx.HTTPError:
        pass


def attach(desktop_id: str) -> Desktop:
    """A client for a desktop started earlier (by this process or another)."""
    record = load(desktop_id)
    return Desktop(record.id, record.base_url, record.token, backend=backend(record.backend))
