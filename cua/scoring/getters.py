"""Getters by OSWorld name: they turn an evaluator's `result`/`expected` config into what a metric
compares.

- `vm_file`: files from the desktop, read with the caller's `fetch(path) -> bytes` and written into the
  cache dir as `dest`.
- `cloud_file` and `local_file`: files shipped with the task (a path relative to the task file, an
  absolute path or a file:// URL) copied into the cache dir as `dest`; http(s) URLs are not supported
  (no internet here).
- `rule`: the config's `rules`, as given.

File getters take OSWorld's `path` and `dest` (default: the path's file name) and give the metric
the cached file's path.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class GetterContext:
    """What getters may use: the desktop's file reader, the task file's folder and the cache dir."""

    fetch: Fetch | None
    task_dir: Path
    cache_dir: Path


def local_source(ref: str, task_dir: Path) -> Path:
    """The local file a task names by `ref`: a path (relative to the task's folder) or a file:// URL."""
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise ValueError(f"{ref}: only local paths and file:// URLs are supported (no internet here)")
    return task_dir / ref


def file_pair(config: Mapping[str, Any]) -> tuple[str, str]:
    """(source, dest) of the file a file getter config names."""
    path, dest = config["path"], config.get("dest")
    if not isinstance(path, str) or not isinstance(dest, (str, type(None))):
        raise ValueError(f"bad path/dest {path!r} -> {dest!r}")
    dest = dest or PurePosixPath(urlparse(path).path).name
    if not dest or PurePosixPath(dest).is_absolute() or ".." in PurePosixPath(dest).parts:
        raise ValueError(f"bad dest {dest!r} for {path}: a file name inside the cache is needed")
    return path, dest


def vm_file(config: Mapping[str, Any], ctx: GetterContext) -> str:
    """Fetch a file from the desktop into the cache; a missing file raises the fetch's error."""
    if ctx.fetch is None:
        raise RuntimeError("vm_file needs a desktop to fetch from")
    path, dest = file_pair(config)
    target = ctx.cache_dir / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(ctx.fetch(path))
    return str(target)


def local_file(config: Mapping[str, Any], ctx: GetterContext) -> str:
    """Copy a file shipped with the task into the cache."""
    path, dest = file_pair(config)
    target = ctx.cache_dir / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local_source(path, ctx.task_dir), target)
    return str(target)


def rule(config: Mapping[str, Any], ctx: GetterContext) -> Any:
    """The config's `rules`, as given."""
    return config["rules"]


GETTERS: dict[str, Callable[[Mapping[str, Any], GetterContext], Any]] = {
    "vm_file": vm_file, "cloud_file": local_file, "local_file": local_file, "rule": rule,
}


def getter_problem(config: Mapping[str, Any], task_dir: Path) -> str | None:
    """Why the getter `config` cannot run here (unknown type, bad fields, a missing or remote file)."""
    kind = config.get("type")
    if kind not in GETTERS:
        return f"getter type {kind!r} is not supported"
    if kind == "rule":
        return None if "rules" in config else "rule getter without rules"
    for option in ("time_suffix", "multi", "gives"):
        if config.get(option):
            return f"{kind}: {option} is not supported"
    try:
        path, _ = file_pair(config)
        if kind != "vm_file" and not local_source(path, task_dir).is_file():
            return f"{kind}: {path} is not a local file"
    except (KeyError, TypeError, ValueError) as e:
        return f"{kind}: {e}"
    return None
