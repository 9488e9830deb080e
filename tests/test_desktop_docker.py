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
        desktop.reset(load_env("calc"), [make_workbook(tmp_path / "sales.xlsx")])
        assert desktop.health().ok
    finally:
        desktop.close()
    names = [c.name for c in client().containers.list(all=True)]
    assert f"cua-desktop-{desktop.id}" not in names
