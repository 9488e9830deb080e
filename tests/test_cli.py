"""The `cua desktop` commands as a user runs them, each call its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from cua.content.documents import make_workbook
from cua.desktop import procs
from tests.conftest import require_desktop_tools


def cua(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cua", *args], capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_up_shot_act_down(tmp_path):
    require_desktop_tools()
    workbook = make_workbook(tmp_path / "sales.xlsx")
    desktop_id = cua("desktop", "up", "--env", "calc", "--open",
                     str(workbook)).stdout.strip().splitlines()[-1]
    try:
        cua("desktop", "shot", desktop_id, "-o", str(tmp_path / "shot.png"))
        assert Image.open(tmp_path / "shot.png").size == (1920, 1080)
        refused = cua("desktop", "act", desktop_id, "click(start_box='(5000,10)')", check=False)
        assert refused.returncode == 2 and "outside" in refused.stderr  # usage: nothing ran
        cua("desktop", "act", desktop_id, "click(start_box='(72,140)')", "type(content='K5\\n')",
            "type(content='42\\n')", "hotkey(key='ctrl s')", "hotkey(key='enter')")
        listed = cua("desktop", "list").stdout
        assert desktop_id in listed
    finally:
        cua("desktop", "down", desktop_id)
    assert procs.marked_pids(desktop_id) == []
    assert desktop_id not in cua("desktop", "list").stdout


def test_unknown_desktop_is_a_clear_error():
    result = cua("desktop", "shot", "nosuchid", check=False)
    assert result.returncode != 0
    assert "no desktop 'nosuchid'" in result.stdout + result.stderr


def test_recipe_with_an_unknown_family_is_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\nout: {tmp_path / 'runs'}\ncontent: {{generate: {{workbooks: 1}}}}"
                      "\nenvs: [calc]\nfamilies: [calc.bold_header, calc.bold_everything]\n")
    result = cua("collect", "--recipe", str(recipe), check=False)
    assert result.returncode == 2
    assert "unknown template families calc.bold_everything" in result.stdout + result.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything was made


def test_bad_recipe_values_are_refused_at_load(tmp_path):
    """Refused with the field named, exit 2, before any desktop starts (they used to hang)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\nout: {tmp_path / 'runs'}\ncontent: {{generate: {{workbooks: 1}}}}"
                      "\nenvs: [calc]\n")
    for override, message in (("agent_format_options.history_n=0", "invalid uitars-1.5 options"),
                              ("agent_format_options.colour=1", "agent_format_options"),
                              ("model.name=m", "needs a base_url"),
                              ("envs=[nosuchenv]", "unknown env 'nosuchenv'"),
                              ("backend=vm", "backend: input should be 'local' or 'docker'"),
                              (f"content={{folder: {tmp_path / 'none'}}}", "does not exist"),
                              (f"content={{files: [{tmp_path / 'a.xlsx'}]}}",
                               f"no such content file: {tmp_path / 'a.xlsx'}"),
                              ("ray={address: '127.0.0.1:1'}",  # ray.init would wait minutes
                               "no Ray cluster answers at 127.0.0.1:1"),
                              ("ray={address: head}", "expected host:port")):
        result = cua("collect", "--recipe", str(recipe), "--set", override, check=False)
        assert result.returncode == 2 and message in result.stderr, (override, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
    result = cua("eval", "--tasks", str(tmp_path), "--model", "served-model", check=False)
    assert result.returncode == 2 and "needs a base_url" in result.stderr


def test_desktop_down_names_what_it_cannot_stop():
    result = cua("desktop", "down", "nosuchid", check=False)
    assert result.returncode == 1 and "no desktop 'nosuchid'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    result = cua("desktop", "down", check=False)
    assert result.returncode == 2 and "--all" in result.stderr


def test_collect_exits_1_when_episodes_error(tmp_path):
    """An endpoint that fails every completion is an error (not a failure): said on stderr, exit
    1, results on stdout. One where nothing answers stops the run before any desktop starts."""
    require_desktop_tools()

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self):  # the model list answers: the run starts
            self._reply(200, b'{"object": "list", "data": []}')

        def do_POST(self):
            self._reply(500, b'{"error": {"message": "out of memory"}}')

        def _reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recipe = tmp_path / "r.yaml"
    try:
        for port in (server.server_port, 9):
            recipe.write_text(f"name: r\nout: {tmp_path / 'runs'}\ncontent: {{generate: "
                              "{workbooks: 1}}\nenvs: [calc]\ntasks_per_content: 1\nworkers: 1"
                              f"\nroles: {{executor: {{name: m, base_url: 'http://127.0.0.1:{port}"
                              "/v1', max_retries: 0}}\n")
            result = cua("collect", "--recipe", str(recipe), "--json", check=False)
            assert result.returncode == 1, result.stderr
            if port == 9:
                assert "no model server answers at http://127.0.0.1:9/v1" in result.stderr
                assert "nothing ran: `cua collect --resume " in result.stdout + result.stderr
                assert result.stdout == ""
            else:
                assert json.loads(result.stdout)["outcomes"]["error"] == 1
                assert "1 episodes and 0 goal proposals errored" in result.stderr
                assert "InternalServerError" in result.stderr
    finally:
        server.shutdown()
    dead = max((tmp_path / "runs").iterdir())  # the later run: no episode was started
    assert not list((dead / "episodes").glob("*.json"))


def test_collect_says_when_no_content_is_usable(tmp_path, shared_content):
    """An empty folder, or one whose files are all refused: said on stderr with the reasons, exit
    1, before any desktop starts."""
    folder = tmp_path / "docs"
    folder.mkdir()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\nout: {tmp_path / 'runs'}\ncontent: {{folder: {folder}}}\n"
                      "envs: [calc]\n")
    result = cua("collect", "--recipe", str(recipe), check=False)
    assert result.returncode == 1 and "no usable content in the run (no files)" in result.stderr
    for name in ("54764.xlsx", "truncated62886.docx"):
        source = shared_content / "corrupt" / name
        if source.exists():
            (folder / name).write_bytes(source.read_bytes())
    assert list(folder.iterdir()), "the shared corrupt files are missing"
    result = cua("collect", "--recipe", str(recipe), check=False)
    assert result.returncode == 1 and "no usable content in the run (" in result.stderr
    assert "54764.xlsx:" in result.stderr and "entity" in result.stderr


def test_desktop_up_refuses_a_missing_file_before_starting(tmp_path):
    result = cua("desktop", "up", "--env", "calc", "--open", str(tmp_path / "nope.xlsx"),
                 check=False)
    assert result.returncode == 2 and "no such file" in result.stderr
    assert cua("desktop", "list").stdout.count("local") == 0  # nothing was started


def test_out_of_range_flags_are_usage_errors_before_anything_runs(tmp_path):
    for args, named in [(("bench", "desktop", "--desktops", "0"), "--desktops"),
                        (("bench", "desktop", "--backend", "vm"), "--backend"),
                        (("bench", "collect", "--desktops", "2", "--desktops", "0"), "--desktops"),
                        (("desktop", "up", "--env", "calc", "--backend", "vm"), "--backend"),
                        (("eval", "--tasks", str(tmp_path), "--backend", "vm"), "--backend"),
                        (("serve", str(tmp_path)), "not a model dir")]:
        result = cua(*args, check=False)
        assert result.returncode == 2 and named in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert cua("desktop", "list").stdout.count("local") == 0
