"""The trajectory store: one folder per run, atomic JSON records, screenshots stored once."""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import tempfile
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

from cua.records import EpisodeRecord, GoalRecord, RunManifest

DATA_URL = "data:image/png;base64,"
SCREEN_URL = "screen://"


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename: readers never see a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = None
    try:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException as exc:
        if temp:
            Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno:  # name the file asked for, not the temp
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def new_run_folder(parent: Path, name: str) -> Path:
    """Create and return an empty folder `NAME-YYYYMMDD-HHMMSS` (UTC) in `parent`; a run that
    starts in the same second as another gets `-2`, `-3`, …"""
    base = f"{name}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
    parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        folder = parent / (base if n == 1 else f"{base}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


def package_versions() -> dict[str, str]:
    """The versions a run's manifest records."""
    found = {"cua": version("cua"), "python": platform.python_version()}
    for package in ("openai", "pydantic", "openpyxl", "python-pptx", "python-docx"):
        found[package] = version(package)
    return found


def screen_digest(png: bytes) -> str:
    return hashlib.sha256(png).hexdigest()


class ScreenBuffer:
    """Screenshots an episode produced, held in memory until the run's driver stores them
    (workers may run on other hosts)."""

    def __init__(self):
        self.screens: dict[str, bytes] = {}

    def put(self, png: bytes) -> str:
        digest = screen_digest(png)
        self.screens.setdefault(digest, png)
        return digest


def externalize(body: Any, put: Callable[[bytes], str]) -> Any:
    """A request body with every PNG data URL handed to `put` and replaced by `screen://SHA256`."""
    if isinstance(body, dict):
        return {k: externalize(v, put) for k, v in body.items()}
    if isinstance(body, list):
        return [externalize(v, put) for v in body]
    if isinstance(body, str) and body.startswith(DATA_URL):
        return SCREEN_URL + put(base64.b64decode(body[len(DATA_URL):]))
    return body


def internalize(body: Any, get: Callable[[str], bytes]) -> Any:
    """The exact request body again: each `screen://SHA256` back to its data URL."""
    if isinstance(body, dict):
        return {k: internalize(v, get) for k, v in body.items()}
    if isinstance(body, list):
        return [internalize(v, get) for v in body]
    if isinstance(body, str) and body.startswith(SCREEN_URL):
        return DATA_URL + base64.b64encode(get(body[len(SCREEN_URL):])).decode()
    return body


class RunStore:
    """`manifest.json`, `goals/ID.json`, `episodes/ID.json`, `screens/AB/SHA256.png`."""

    def __init__(self, root: Path):
        self.root = root

    # -- manifest ---------------------------------------------------------------------------------

    def create(self, manifest: RunManifest) -> None:
        if (self.root / "manifest.json").exists():
            raise FileExistsError(f"{self.root} already holds a run (use --resume)")
        write_atomic(self.root / "manifest.json", manifest.model_dump_json(indent=1).encode())

    def manifest(self) -> RunManifest:
        path = self.root / "manifest.json"
        if not path.exists():
            raise FileNotFoundError(f"{self.root} is not a cua run (no manifest.json)")
        return RunManifest.model_validate_json(path.read_text())

    # -- screenshots ------------------------------------------------------------------------------

    def put_screen(self, png: bytes) -> str:
        digest = screen_digest(png)
        path = self.screen_path(digest)
        if not path.exists():
            write_atomic(path, png)
        return digest

    def screen_path(self, digest: str) -> Path:
        return self.root / "screens" / digest[:2] / f"{digest}.png"

    def screen(self, digest: str) -> bytes:
        return self.screen_path(digest).read_bytes()

    # -- records ----------------------------------------------------------------------------------

    def write_goal(self, record: GoalRecord) -> None:
        write_atomic(self.root / "goals" / f"{record.id}.json",
                     record.model_dump_json(indent=1).encode())

    def write_episode(self, record: EpisodeRecord) -> None:
        write_atomic(self.root / "episodes" / f"{record.id}.json",
                     record.model_dump_json(indent=1).encode())

    def goals(self) -> dict[str, GoalRecord]:
        return {p.stem: GoalRecord.model_validate_json(p.read_text())
                for p in sorted((self.root / "goals").glob("*.json"))}

    def episodes(self) -> dict[str, EpisodeRecord]:
        return {p.stem: EpisodeRecord.model_validate_json(p.read_text())
                for p in sorted((self.root / "episodes").glob("*.json"))}

    def episode_ids(self) -> set[str]:
        return {p.stem for p in (self.root / "episodes").glob("*.json")}
