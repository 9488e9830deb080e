"""OSWorld's own scorer: desktop-env 1.0.2 in the scorer venv, driven through cua's worker
(`Scorer`), reaching desktops through the token-adding `Bridge`."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cua.content.documents import make_workbook
from cua.envspec import load_env
from cua.evaluate.osworld import scorer_env
from cua.evaluate.osworld.bridge import Bridge
from cua.evaluate.osworld.scorer import Scorer, ScorerError

SAME_DATA = {"rules": [{"type": "sheet_data", "sheet_idx0": 0, "sheet_idx1": "EI0"}]}


def scorer_venv_or_skip() -> None:
    """Skip (fail in CI, where `make install` made it) unless the scorer venv is installed."""
    if not scorer_env.installed():
        reason = (f"no OSWorld scorer venv at {scorer_env.venv_dir()}: run `cua eval "
                  "install-scorer` (`make install` does)")
        print(reason)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def scorer():
    scorer_venv_or_skip()
    with Scorer(setup_timeout_s=180, evaluate_timeout_s=180) as scorer:  # a hang fails fast
        yield scorer


@pytest.fixture(scope="module")
def stub_vm():
    """A stand-in VM for evaluations that read no desktop: it answers OSWorld's liveness probe
    (GET /terminal), which every evaluate runs before its postconfig."""
    class Terminal(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"output": "", "status": "success"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Terminal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"host": "127.0.0.1", "server_port": server.server_address[1]}
    server.shutdown()
    server.server_close()


@pytest.fixture
def books(tmp_path) -> Path:
    """A cache folder with two identical workbooks and a different one."""
    make_workbook(tmp_path / "a.xlsx", seed=1)
    make_workbook(tmp_path / "same.xlsx", seed=1)
    make_workbook(tmp_path / "other.xlsx", seed=2)
    return tmp_path


def _table(result: str, expected: str) -> dict:
    return {"func": "compare_table", "result": {"type": "cache_file", "path": result},
            "expected": {"type": "cache_file", "path": expected}, "options": SAME_DATA}


def test_ping_reports_desktop_env(scorer):
    versions = scorer.ping()
    assert versions["desktop-env"] == "1.0.2"
    assert versions["numpy"].startswith("1.26.")  # OSWorld's pins, not cua's


def test_scores_combine_as_in_osworld(scorer, stub_vm, books):
    assert scorer.evaluate(_table("a.xlsx", "same.xlsx"), stub_vm, books).score == 1.0
    assert scorer.evaluate(_table("a.xlsx", "other.xlsx"), stub_vm, books).score == 0.0

    def both(conj: str, first: str, second: str) -> dict:
        one, two = _table("a.xlsx", first), _table("a.xlsx", second)
        return {"func": ["compare_table"] * 2, "conj": conj,
                "result": [one["result"], two["result"]],
                "expected": [one["expected"], two["expected"]], "options": [SAME_DATA] * 2}

    stopped = scorer.evaluate(both("and", "other.xlsx", "same.xlsx"), stub_vm, books)
    assert stopped.score == 0.0 and len(stopped.details) == 1  # "and" stops at the first 0
    either = scorer.evaluate(both("or", "other.xlsx", "same.xlsx"), stub_vm, books)
    assert either.score == 1.0 and [d.score for d in either.details] == [0.0, 1.0]
    assert scorer.evaluate(both("and", "same.xlsx", "same.xlsx"), stub_vm, books).score == 1.0

    printed = {"func": "exact_match", "result": {"type": "rule", "rules": "42"},  # print()s
               "expected": {"type": "rule", "rules": {"expected": "42"}}}
    assert scorer.evaluate(printed, stub_vm, books).score == 1.0  # the reply stays intact

    infeasible = {"func": "infeasible"}
    assert scorer.evaluate(infeasible, stub_vm, books, last_action="FAIL").score == 1.0
    assert scorer.evaluate(infeasible, stub_vm, books, last_action="DONE").score == 0.0
    gave_up = scorer.evaluate(_table("a.xlsx", "same.xlsx"), stub_vm, books, last_action="FAIL")
    assert gave_up.score == 0.0


def test_worker_survives_failures(scorer, stub_vm, books):
    pid = scorer.proc.pid
    with pytest.raises(ScorerError, match="no metric 'no_such_metric'"):
        scorer.evaluate({**_table("a.xlsx", "same.xlsx"), "func": "no_such_metric"},
                        stub_vm, books)
    with pytest.raises(ScorerError, match="evaluate failed"):  # the metric itself raises
        scorer.evaluate({**_table("a.xlsx", "same.xlsx"), "options": {"rules": [
            {"type": "no_such_rule"}]}}, stub_vm, books)
    assert scorer.evaluate(_table("a.xlsx", "same.xlsx"), stub_vm, books).score == 1.0
    assert scorer.proc.pid == pid  # the same worker answered throughout

    scorer.proc.kill()  # a dead worker is restarted once, transparently
    scorer.proc.wait()
    temp = Path(scorer.temp)
    assert scorer.ping()["desktop-env"] == "1.0.2"
    assert scorer.proc.pid != pid
    assert not temp.exists()  # the dead worker's TMPDIR went with it


def test_a_request_past_its_timeout_stops_the_worker(stub_vm, tmp_path, monkeypatch):
    scorer_venv_or_skip()
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the workers' temporary folder
    with Scorer(setup_timeout_s=2) as scorer:
        first = scorer.proc.pid
        with pytest.raises(ScorerError, match="did not answer 'setup' within 2 s"):
            scorer.setup([{"type": "sleep", "parameters": {"seconds": 60}}], stub_vm, tmp_path)
        assert scorer.proc is None  # killed; the next request starts a new worker
        scorer.setup([{"type": "sleep", "parameters": {"seconds": 0.1}}], stub_vm, tmp_path)
        assert scorer.proc.pid != first
    assert list(temp.iterdir()) == []  # the killed worker left nothing behind


def test_a_killed_owners_worker_exits_and_leaves_nothing(tmp_path):
    scorer_venv_or_skip()
    owner = subprocess.Popen(
        [sys.executable, "-c", "import time; from cua.evaluate.osworld.scorer import Scorer; "
         "s = Scorer().__enter__(); print(s.proc.pid, s.temp, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        pid, temp = owner.stdout.readline().split()
        assert Path(temp).parent == tmp_path and any(Path(temp).iterdir())  # its imports' files
        owner.kill()  # no close(): the worker sees the end of its input
        deadline = time.monotonic() + 20
        while (Path(f"/proc/{pid}").exists() or list(tmp_path.iterdir())) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{pid}").exists() and list(tmp_path.iterdir()) == []
    finally:
        owner.kill()


def install_scorer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cua", "eval", "install-scorer", *args],
                          capture_output=True, text=True, timeout=600)


def test_install_scorer_is_a_no_op_once_done():
    scorer_venv_or_skip()
    started = time.monotonic()
    done = install_scorer()
    assert done.returncode == 0, done.stderr
    assert "desktop-env 1.0.2" in done.stdout and time.monotonic() - started < 10


def test_install_scorer_errors(tmp_path):
    (tmp_path / "file").write_text("mine")
    usage = install_scorer("--dir", str(tmp_path / "file"))
    assert usage.returncode == 2 and "is a file" in usage.stderr
    usage = install_scorer("--dir", str(tmp_path))  # a folder of files is never cleared
    assert usage.returncode == 2 and "is no venv" in usage.stderr
    assert (tmp_path / "file").read_text() == "mine"
    failed = install_scorer("--dir", "/proc/cua-scorer")  # no venv can be made there
    assert failed.returncode == 1 and "cannot make a venv in /proc/cua-scorer" in failed.stderr
    with pytest.raises(scorer_env.ScorerEnvError, match="cua eval install-scorer"):
        scorer_env.python(tmp_path / "nowhere")


def test_bridge_adds_the_token(desktop):
    """Local desktops listen on TCP, docker ones on a unix socket: the bridge reaches both."""
    with Bridge(desktop) as bridge:
        url = f"http://127.0.0.1:{bridge.port}"
        with urllib.request.urlopen(f"{url}/health", timeout=10) as reply:  # no token
            assert reply.status == 200 and "x_server" in json.loads(reply.read())
        assert desktop.http.get("/health", headers={"Authorization": ""}).status_code == 401
        big = os.urandom(3 << 20) + b"end"  # bodies stream both ways
        assert httpx.put(f"{url}/files/big.bin", content=big, timeout=30).status_code == 200
        assert httpx.get(f"{url}/files/big.bin", timeout=30).content == big
        missing = httpx.get(f"{url}/files/nothing-here.txt", timeout=10)
        assert missing.status_code == 404 and missing.json()["error"] == "file"
    assert desktop.download("big.bin") == big


def test_compare_table_on_a_live_desktop(scorer, desktop, tmp_path):
    """OSWorld's setup (an upload), postconfig and getters reach a real desktop through the
    bridge: its workbook, fetched with vm_file, against a cached copy and an uploaded other."""
    book = make_workbook(tmp_path / "sales.xlsx", seed=3)
    other = make_workbook(tmp_path / "other.xlsx", seed=4)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "gold.xlsx").write_bytes(book.read_bytes())
    desktop.reset(load_env("calc"), [book])
    on_desktop = {"type": "vm_file", "path": "/home/user/sales.xlsx", "dest": "result.xlsx"}
    with Bridge(desktop) as bridge:
        scorer.setup([{"type": "upload_file", "parameters": {"files": [
            {"local_path": str(other), "path": "/home/user/inbox/other.xlsx"}]}}],
            bridge.vm, cache)
        assert desktop.download("inbox/other.xlsx") == other.read_bytes()
        same = scorer.evaluate({
            "func": "compare_table", "result": on_desktop, "options": SAME_DATA,
            "expected": {"type": "cache_file", "path": "gold.xlsx"},
            "postconfig": [{"type": "sleep", "parameters": {"seconds": 0.1}}]}, bridge.vm, cache)
        differs = scorer.evaluate({
            "func": "compare_table", "result": on_desktop, "options": SAME_DATA,
            "expected": {"type": "vm_file", "path": "/home/user/inbox/other.xlsx",
                         "dest": "other.xlsx"}}, bridge.vm, cache)
    assert (same.score, differs.score) == (1.0, 0.0)
    assert (cache / "result.xlsx").read_bytes() == book.read_bytes()


def test_worker_imports_only_the_standard_library_and_desktop_env():
    tree = ast.parse(scorer_env.WORKER.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    roots = {name.split(".")[0] for name in names}
    assert roots - sys.stdlib_module_names == {"desktop_env"}
