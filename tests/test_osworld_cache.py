"""OSWorld's file cache: names as desktop-env looks them up, fetched once, sha256 recorded, offline
reuse, and an unreachable URL as one error naming it."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import uuid
from pathlib import Path

import pytest

from cua.evaluate.osworld.cache import (
    BROWSE_HISTORY,
    CacheEntry,
    cache_entries,
    download_name,
    prefetch,
)
from cua.evaluate.taskconfig import TaskConfig

SHARED_CALC = (Path(__file__).resolve().parents[2] / "shared" / "osworld" / "examples"
               / "libreoffice_calc" / "01b269ae-2111-4a07-81fd-3fcd711993b0.json")


def task(base: str, gold_url: str | None = None) -> TaskConfig:
    return TaskConfig.model_validate({
        "id": "t1", "instruction": "fill the blanks",
        "config": [{"type": "download", "parameters": {"files": [
            {"url": f"{base}/book.xlsx", "path": "/home/user/book.xlsx"}]}},
            {"type": "open", "parameters": {"path": "/home/user/book.xlsx"}}],
        "evaluator": {"func": "compare_table",
                      "result": {"type": "vm_file", "path": "/home/user/book.xlsx",
                                 "dest": "book.xlsx"},
                      "expected": {"type": "cloud_file", "path": gold_url or f"{base}/gold.xlsx",
                                   "dest": "book_gold.xlsx"}}})


@pytest.fixture
def files_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "book.xlsx").write_bytes(b"book bytes")
    (served / "gold.xlsx").write_bytes(b"gold bytes")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()


def test_names_are_those_desktop_env_looks_up():
    entries = cache_entries(task("https://example.org/f"))
    url = "https://example.org/f/book.xlsx"
    assert [e.name for e in entries] == [f"{uuid.uuid5(uuid.NAMESPACE_URL, url)}_book.xlsx",
                                         "book_gold.xlsx"]
    assert download_name(url, "/home/user/book.xlsx") == entries[0].name


def test_prefetch_fetches_once_records_sha256_and_runs_offline(tmp_path, files_server):
    base, served = files_server
    cache = tmp_path / "cache"
    report = prefetch(task(base), cache)
    assert not report.errors
    folder = cache / "t1"
    assert {f.name: f.sha256 for f in report.files} == {
        e.name: hashlib.sha256((folder / e.name).read_bytes()).hexdigest()
        for e in cache_entries(task(base))}
    assert (folder / "book_gold.xlsx").read_bytes() == b"gold bytes"
    manifest = json.loads((folder / "sha256.json").read_text())
    assert manifest["book_gold.xlsx"]["url"] == f"{base}/gold.xlsx"
    for path in served.iterdir():
        path.unlink()  # the server has nothing now: a second run must not need it
    again = prefetch(task(base), cache)
    assert not again.errors and again.files == report.files


def test_an_unreachable_url_is_one_error_naming_it(tmp_path, files_server):
    base, _ = files_server
    dead = "http://127.0.0.1:9/gone/gold.xlsx"
    report = prefetch(task(base, gold_url=dead), tmp_path / "cache", timeout_s=2, attempts=2)
    assert len(report.errors) == 1 and report.errors[0].startswith(dead)
    assert [f.name for f in report.files] == [cache_entries(task(base))[0].name]
    assert not list((tmp_path / "cache" / "t1").glob("*.part"))


def test_the_empty_history_a_task_fills_is_cached_where_desktop_env_looks():
    history = task("https://example.org/f").model_copy(deep=True)
    history.config.insert(0, type(history.config[0]).model_validate({
        "type": "update_browse_history", "parameters": {"history": [
            {"url": "https://www.youtube.com/", "title": "YouTube",
             "visit_time_from_now_in_seconds": 60}]}}))
    entries = cache_entries(history)
    assert entries[1] == CacheEntry(url=BROWSE_HISTORY, name="history_new.sqlite")


def test_every_download_of_a_real_osworld_task_is_listed():
    if not SHARED_CALC.exists():
        pytest.skip(f"{SHARED_CALC} is absent (../shared is beside the checkout only)")
    entries = cache_entries(TaskConfig.model_validate_json(SHARED_CALC.read_text()))
    assert [e.name for e in entries][1] == "Student_Level_Fill_Blank_gold.xlsx"
    assert entries[0].name.endswith("_Student_Level_Fill_Blank.xlsx")
    assert all(e.url.startswith("https://") for e in entries)
