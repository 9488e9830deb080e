"""OSWorld's file cache: the documents a task's setup downloads and the files its evaluator fetches
(`cloud_file`), laid out the way desktop-env looks for them (`CACHE/<task id>/<name>`), so its
SetupController and getters find them there and never go online. `prefetch` fills the cache with
bounded retries and timeouts and records each file's sha256; a cache that already holds the files
runs offline."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path, PurePosixPath

import httpx
from pydantic import BaseModel

from cua.evaluate.taskconfig import TaskConfig

MANIFEST = "sha256.json"
# desktop-env's `update_browse_history` step writes visits into an empty Chrome history that it
# takes from the task's cache as `history_new.sqlite`, downloading it from here when absent.
BROWSE_HISTORY = ("https://huggingface.co/datasets/xlangai/ubuntu_osworld_file_cache/resolve/main/"
                  "chrome/44ee5668-ecd5-4366-a6ce-c1c9b8d4e938/history_empty.sqlite?download=true")


class CacheEntry(BaseModel):
    url: str
    name: str  # the file's name in the task's cache folder


class CachedFile(CacheEntry):
    sha256: str
    bytes: int


class PrefetchReport(BaseModel):
    files: list[CachedFile]
    errors: list[str]  # one per URL that could not be fetched, naming it


def download_name(url: str, vm_path: str) -> str:
    """The cache name desktop-env's `download` step gives `url` bound for `vm_path`."""
    return f"{uuid.uuid5(uuid.NAMESPACE_URL, url)}_{PurePosixPath(vm_path).name}"


def cache_entries(task: TaskConfig) -> list[CacheEntry]:
    """Every file `task` fetches over the network: its setup's and postconfig's downloads, the
    empty browsing history its `update_browse_history` steps fill, and its evaluator's
    `cloud_file` getters."""
    steps = [*task.config, *task.evaluator.postconfig]
    entries = [CacheEntry(url=f["url"], name=download_name(f["url"], f["path"]))
               for step in steps if step.type == "download"
               for f in step.parameters.get("files", [])]
    if any(step.type == "update_browse_history" for step in steps):
        entries.append(CacheEntry(url=BROWSE_HISTORY, name="history_new.sqlite"))
    for call in task.evaluator.calls():
        for getter in (call.result, call.expected):
            if getter is None or getter.type != "cloud_file":
                continue
            config = getter.config()
            urls, names = config.get("path"), config.get("dest")
            if not config.get("multi"):
                urls, names = [urls], [names]
            entries += [CacheEntry(url=u, name=n) for u, n in zip(urls, names, strict=True)]
    return list({e.name: e for e in entries}.values())


def task_cache(cache_root: Path, task: TaskConfig) -> Path:
    return cache_root / task.id


def prefetch(task: TaskConfig, cache_root: Path, timeout_s: float = 60.0,
             attempts: int = 3) -> PrefetchReport:
    """Fetch the files of `task` missing from its cache folder; files already there are kept.
    Each URL gets `attempts` tries of at most `timeout_s` each."""
    folder = task_cache(cache_root, task)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    files, errors = [], []
    for entry in cache_entries(task):
        target = folder / entry.name
        if not target.exists():
            try:
                _download(entry.url, target, timeout_s, attempts)
            except (httpx.HTTPError, OSError) as exc:
                errors.append(f"{entry.url}: {type(exc).__name__}: {exc}")
                continue
        recorded = manifest.get(entry.name)
        size = target.stat().st_size
        if recorded is None or recorded["bytes"] != size:
            recorded = {"url": entry.url, "sha256": _sha256(target), "bytes": size}
            manifest[entry.name] = recorded
        files.append(CachedFile(name=entry.name, **recorded))
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return PrefetchReport(files=files, errors=errors)


def _download(url: str, target: Path, timeout_s: float, attempts: int) -> None:
    """`url` into `target` through a temporary file; retried with backoff, the last error raised."""
    partial = target.with_name(target.name + ".part")
    for attempt in range(attempts):
        try:
            with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True) as response:
                response.raise_for_status()
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
            partial.replace(target)
            return
        except httpx.HTTPError:
            partial.unlink(missing_ok=True)
            if attempt == attempts - 1:
                raise
            time.sleep(2 ** attempt)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
