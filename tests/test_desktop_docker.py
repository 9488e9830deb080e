"""The docker backend's isolation: a real container on the engine (Docker or podman)."""

from __future__ import annotations

from cua.content.documents import make_workbook
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
        assert not host["Privileged"] and host["NetworkMode"] != "host"
        assert host["Memory"] == 1500 * 2**20 and host["NanoCpus"] == 10**9
        assert all(b["HostIp"] == "127.0.0.1" for b in attrs["NetworkSettings"]["Ports"]["8080/tcp"])
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
