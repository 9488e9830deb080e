"""The docker backend's isolation: a real container on the engine (Docker or podman)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from cua.content.documents import make_workbook
from cua.desktop import procs, registry
from cua.desktop.docker import DockerBackend, client
from cua.envspec import load_env
from tests.conftest import docker_engine_or_skip, require_desktop_tools


def test_container_is_confined_and_removed_on_close(tmp_path):
    require_desktop_tools()
    docker_engine_or_skip()
    desktop = DockerBackend(mem_limit="1500m", cpus=1.0).start()
    try:
        attrs = client().containers.get(f"cua-desktop-{desktop.id}").attrs
        host = attrs["HostConfig"]
        assert not host["Privileged"] and host["NetworkMode"] == "none"
        assert not host.get("PortBindings")  # the server is on a unix socket only
        assert host["Memory"] == 1500 * 2**20 and host["NanoCpus"] == 10**9
        dropped = {c.upper().removeprefix("CAP_") for c in host["CapDrop"]}  # podman lists them
        assert dropped == {"ALL"} or {"CHOWN", "KILL", "SETUID", "SETGID", "NET_RAW"} <= dropped
        assert any("no-new-privileges" in o for o in host["SecurityOpt"])
        assert host["ReadonlyRootfs"] and host["PidsLimit"] == 1024
        desktop.reset(load_env("calc"), [make_workbook(tmp_path / "sales.xlsx")])
        assert desktop.health().ok
        container = client().containers.get(f"cua-desktop-{desktop.id}")
        probe = container.exec_run(["sh", "-c", "touch /opt/x 2>/dev/null || echo image-ro; "
                                    "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"])
        lines = probe.output.decode().split()
        assert "image-ro" in lines and lines[lines.index("CapEff:") + 1] == "0000000000000000"
        assert lines[lines.index("NoNewPrivs:") + 1] == "1"
    finally:
        desktop.close()
    names = [c.name for c in client().containers.list(all=True)]
    assert f"cua-desktop-{desktop.id}" not in names
    assert not Path(desktop.base_url.removeprefix("unix:")).parent.exists()


# Run inside the container as its user (the apps' and the agent's code's): what can it reach?
PROBE = r"""
import glob, pathlib, socket
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
    try:
        print("readable", path, pathlib.Path(path).read_bytes().replace(b"\0", b" ").decode())
    except OSError as exc:
        print("refused", path, type(exc).__name__)
print("files", sorted(p.name for p in pathlib.Path("/run/cua").iterdir()))
print("interfaces", sorted(p.name for p in pathlib.Path("/sys/class/net").iterdir()))
try:
    socket.create_connection(("192.0.2.1", 80), timeout=3)
    print("egress open")
except OSError as exc:
    print("egress refused", exc.errno)
"""


def test_apps_cannot_reach_the_network_or_the_token(tmp_path):
    require_desktop_tools()
    docker_engine_or_skip()
    desktop = DockerBackend().start()
    try:
        token = registry.load(desktop.id).token
        desktop.reset(load_env("calc"), [make_workbook(tmp_path / "sales.xlsx")])
        container = client().containers.get(f"cua-desktop-{desktop.id}")
        report = container.exec_run(["python3", "-c", PROBE]).output.decode()
        assert token not in report
        assert "egress refused" in report and "interfaces ['lo']" in report
        # the token file is gone; beside the control socket, those of OSWorld's guest ports
        assert "files ['control.sock', 'tcp-8080.sock', 'tcp-9222.sock']" in report
        server = [line.split()[1] for line in report.splitlines()
                  if line.split()[2:5] == ["python", "-m", "cua.desktop.server"]]
        assert server and f"refused {server[0].replace('cmdline', 'environ')} " in report
        assert "soffice" in report  # the apps run, and their environment says nothing secret
    finally:
        desktop.close()


def test_an_env_that_asks_for_the_network_gets_one():
    require_desktop_tools()
    docker_engine_or_skip()
    desktop = registry.desktop_for(load_env("calc").model_copy(update={"network": True}), None,
                                   "docker")
    try:
        container = client().containers.get(f"cua-desktop-{desktop.id}")
        assert container.attrs["HostConfig"]["NetworkMode"] != "none"
        interfaces = container.exec_run(["ls", "/sys/class/net"]).output.decode().split()
        assert set(interfaces) - {"lo"} and desktop.answers()
        same = registry.desktop_for(load_env("calc").model_copy(update={"network": True}),
                                    desktop, "docker")
        assert same is desktop
        assert container.attrs["HostConfig"]["ReadonlyRootfs"]
        # an env whose tasks run sudo: a new container, its image writable for apt
        desktop = registry.desktop_for(load_env("osworld"), desktop, "docker")
        assert desktop is not same and desktop.sudo and not client().containers.get(
            f"cua-desktop-{desktop.id}").attrs["HostConfig"]["ReadonlyRootfs"]
    finally:
        desktop.close()


def _containers(desktop_id: str) -> list:
    return client().containers.list(all=True, filters={"label": f"cua.desktop={desktop_id}"})


def test_a_desktop_ends_with_its_killed_owner_unless_it_is_unowned():
    require_desktop_tools()
    docker_engine_or_skip()
    owner = subprocess.Popen(  # with a fork of itself that lives on: the desktop is not the fork's
        [sys.executable, "-c", "from cua.desktop.docker import DockerBackend; import os, time; "
         "d = DockerBackend().start(); u = DockerBackend(owned=False).start(); "
         "fork = os.fork(); fork or time.sleep(600); print(d.id, u.id, fork, flush=True); "
         "time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    fork = unowned = None
    try:
        desktop_id, unowned, fork = owner.stdout.readline().split()
        root = Path(registry.load(desktop_id).root)
        assert root.exists() and _containers(desktop_id) and _containers(unowned)
        owner.kill()  # no clean-up of its own: SIGKILL
        deadline = time.monotonic() + 30
        while _containers(desktop_id) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _containers(desktop_id) == [] and not root.exists()
        assert desktop_id not in {r.id for r in registry.records()}
        assert procs.alive(int(fork)) and _containers(unowned)  # `cua desktop up`'s kind stays
    finally:
        owner.kill()
        if fork:
            with suppress(ProcessLookupError):
                os.kill(int(fork), signal.SIGKILL)
        if unowned:
            DockerBackend(owned=False).stop(unowned)
    assert _containers(unowned) == []
