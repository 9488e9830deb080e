"""Getters by OSWorld name: they turn an evaluator's `result`/`expected` config into what a metric
compares.

- `vm_file`: files from the desktop, read with the caller's `fetch(path) -> bytes` and written into the
  cache dir as `dest`.
- `cloud_file` and `local_file`: files shipped with the task (a path relative to the task file, an
  absolute path or a file:// URL) copied into the cache dir as `dest`; http(s) URLs are not supported
  (no internet here).
- `rule`: the config's `rules`, as given.

File getters take OSWorld's `path`/`dest`, or lists of both with `multi: true`; `gives` (default [0])
picks which cached paths reach the metric: one path, or a list when it picks several. Every file is
cached, so a metric can find the ones it is not given by name (sheet_print's CSV exports).
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


def file_pairs(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(source, dest) for each file a file getter config names."""
    paths, dests = config["path"], config.get("dest")
    if config.get("multi", False):
        if not isinstance(paths, list) or not isinstance(dests, list) or len(paths) != len(dests):
            raise ValueError("multi: path and dest must be lists of the same length")
    else:
        paths, dests = [paths], [dests]
    pairs = []
    for path, dest in zip(paths, dests):
        if not isinstance(path, str) or not isinstance(dest, (str, type(None))):
            raise ValueError(f"bad path/dest {path!r} -> {dest!r}")
        dest = dest or PurePosixPath(urlparse(path).path).name
        if not dest or PurePosixPath(dest).is_absolute() or ".." in PurePosixPath(dest).parts:
            raise ValueError(f"bad dest {dest!r} for {path}: a file name inside the cache is needed")
        pairs.append((path, dest))
    return pairs


def _given(config: Mapping[str, Any], cached: list[Path]) -> str | list[str]:
    picked = [str(cached[i]) for i in config.get("gives", [0])]
    return picked[0] if len(picked) == 1 else picked


def vm_file(config: Mapping[str, Any], ctx: GetterContext) -> str | list[str]:
    """Fetch files from the desktop into the cache; a missing file raises the fetch's error."""
    if ctx.fetch is None:
        raise RuntimeError("vm_file needs a desktop to fetch from")
    cached = []
    for path, dest in file_pairs(config):
        target = ctx.cache_dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(ctx.fetch(path))
        cached.append(target)
    return _given(config, cached)


def local_file(config: Mapping[str, Any], ctx: GetterContext) -> str | list[str]:
    """Copy files shipped with the task into the cache."""
    cached = []
    for path, dest in file_pairs(config):
        target = ctx.cache_dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_source(path, ctx.task_dir), target)
        cached.append(target)
    return _given(config, cached)


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
    if config.get("time_suffix"):
        return f"{kind}: time_suffix is not supported"
    try:
        pairs = file_pairs(config)
        gives = config.get("gives", [0])
        if not gives or any(not isinstance(i, int) or not 0 <= i < len(pairs) for i in gives):
            return f"{kind}: gives {gives!r} does not pick from {len(pairs)} file(s)"
        if kind != "vm_file":
            for path, _ in pairs:
                if not local_source(path, task_dir).is_file():
                    return f"{kind}: {path} is not a local file"
    except (KeyError, TypeError, ValueError) as e:
        return f"{kind}: {e}"
    return None
