"""Collection on a real two-node Ray cluster on this machine: a head and a second node, each
started with `ray start` and its own resources, desktops on both (each actor with a standby
desktop set up for the episode it was told it runs next), and the second node killed mid-run
without losing or repeating an episode."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from cua.collect.store import RunStore
from cua.train.serve import free_port
from tests.conftest import require_desktop_tools

NODE_CPUS = "1"  # one desktop per node (the recipe asks for one CPU per desktop)


def _ray(*args: str, env: dict[str, str]) -> None:
    subprocess.run([str(Path(sys.executable).with_name("ray")), *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def _processes_under(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def _raylet(node_id: str) -> psutil.Process:
    (raylet,) = [p for p in _processes_under(f"--node_id={node_id}")
                 if p.name() == "raylet"]
    return raylet


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:  # gone, or a zombie
        return ""


def _desktop_servers(raylet: psutil.Process) -> list[psutil.Process]:
    """The node's desktop servers: what its workers' zygotes forked (their command line)."""
    descendants = raylet.children(recursive=True)
    forked = {p.pid for p in descendants if "cua.desktop.zygote" in _cmdline(p)}
    servers = []
    for proc in descendants:
        with suppress(psutil.Error):
            if proc.pid in forked and proc.ppid() in forked:
                servers.append(proc)
    return servers


@pytest.fixture
def cluster(tmp_path):
    """A head (`ray start --head`) and a second node (`ray start --address`), token auth on;
    yields (address, env, node ids by resource name); every process of it ends afterwards."""
    pytest.importorskip("ray", reason="needs the scale extra (pip install -e '.[scale]')")
    require_desktop_tools()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_USAGE_STATS_ENABLED": "0"}
    address = f"127.0.0.1:{free_port()}"
    common = ["--num-cpus", NODE_CPUS, "--object-store-memory", str(100 * 2**20),
              "--disable-usage-stats"]
    try:
        _ray("start", "--head", "--node-ip-address", "127.0.0.1", "--port",
             address.split(":")[1], "--temp-dir", temp, "--include-dashboard=false",
             "--resources", '{"head_node": 1}', *common, env=env)
        _ray("start", "--address", address, "--node-ip-address", "127.0.0.1",
             "--resources", '{"second_node": 1}', *common, env=env)
        yield address, env, temp
    finally:
        for proc in _processes_under(temp):
            with suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(_processes_under(temp), timeout=10)


def _node_ids(address: str, env: dict[str, str]) -> dict[str, str]:
    """Node id of each node, by the custom resource it was started with."""
    script = ("import json, ray; ray.init(address=%r, log_to_driver=False); print(json.dumps({"
              "r: n['NodeID'] for n in ray.nodes() if n['Alive'] for r in n['Resources'] "
              "if r.endswith('_node')}))" % address)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    return json.loads(out.splitlines()[-1])


def test_a_node_killed_mid_run_loses_no_episode(cluster, tmp_path):
    address, env, _ = cluster
    nodes = _node_ids(address, env)
    assert set(nodes) == {"head_node", "second_node"}
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: cluster\nout: {tmp_path / 'runs'}\ncontent: {{generate: "
                      "{workbooks: 2, seed: 5}}\nenvs: [calc]\ntasks_per_content: 2\nworkers: 2\n"
                      "standby: true\n"
                      f"ray: {{address: '{address}', cpus_per_desktop: 1}}\n")
    collector = subprocess.Popen([sys.executable, "-m", "cua", "collect", "--json", "--recipe",
                                  str(recipe)], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    second = _raylet(nodes["second_node"])
    deadline = time.monotonic() + 300
    while not (list((tmp_path / "runs").glob("*/episodes/*.json"))
               and _desktop_servers(second) and _desktop_servers(_raylet(nodes["head_node"]))):
        assert collector.poll() is None and time.monotonic() < deadline, collector.stderr.read()
        time.sleep(0.2)
    for proc in [*second.children(recursive=True), second]:  # the machine goes away
        with suppress(psutil.NoSuchProcess):  # one that ended meanwhile
            proc.send_signal(signal.SIGKILL)
    stdout, stderr = collector.communicate(timeout=600)
    assert collector.returncode == 0, stderr
    assert sum(json.loads(stdout)["outcomes"].values()) == 4  # each episode scored once
    (run_dir,) = (tmp_path / "runs").iterdir()
    store = RunStore(run_dir)
    planned = sorted(t.id for g in store.goals().values() for t in g.tasks)
    assert sorted(store.episodes()) == planned and len(planned) == 4
    assert all(r.outcome != "error" for r in store.episodes().values())
    assert any(r.set_up_ahead for r in store.episodes().values())  # standby on the actors
