"""The `docker` backend: one container per desktop, from the image in `docker/`, driven through
the Docker Engine API (Docker, or podman's service: see scripts/setup-podman.sh).

The container runs the same control server as the local backend, as the unprivileged user `cua`,
with no capabilities, no way to gain privileges and a read-only image (see `LOCKED_DOWN`), unless
asked for root (`start(sudo=True)`, for an env spec whose tasks run sudo, as OSWorld's do: see
`SUDO_ALLOWED`). It has no network unless asked (`start(network=True)`): the server
listens on a unix socket in a private host folder mounted at /run/cua, where the token is handed
over as a file the server deletes before any app starts."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from cua.desktop import registry
from cua.desktop.client import UNIX, Desktop, DesktopError
from cua.desktop.reaper import REAPER
from cua.desktop.waiting import WaitTimeout, wait_until

try:
    import docker
    from docker.errors import DockerException, ImageNotFound, NotFound
except ImportError:  # the SDK is the optional extra `cua[docker]`
    docker = None
    DockerException = ImageNotFound = NotFound = OSError

PODMAN_SOCKET = "unix:///run/cua/podman.sock"  # where scripts/setup-podman.sh serves the API
LABEL = "cua.desktop"
SHM_SIZE = "512m"  # Chromium and LibreOffice outgrow Docker's default 64 MB /dev/shm
# No capabilities, no privilege gain (setuid), an immutable image: only /tmp, in memory, is
# writable (the desktop's state and home live in /tmp/desktop), and a bounded number of processes.
LOCKED_DOWN = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "read_only": True,
               "tmpfs": {"/tmp": "rw,exec,nosuid,nodev,mode=1777"}, "pids_limit": 1024}
# For tasks that need root (OSWorld's run `sudo -S apt-get install …`): the user may sudo with its
# password (the image's `sudo` group), as on OSWorld's VM; the engine's default capabilities and a
# writable image, still a container of its own, with bounded processes and memory.
SUDO_ALLOWED = {"read_only": False, "tmpfs": LOCKED_DOWN["tmpfs"],
                "pids_limit": LOCKED_DOWN["pids_limit"]}
SHARED = "/run/cua"  # in the container: the control socket and, until the server reads it, the token


def client():
    """A client of the engine DOCKER_HOST names (else Docker's default socket, else the podman
    service of scripts/setup-podman.sh); DesktopError when none answers."""
    if docker is None:
        raise DesktopError("backend", "the docker backend needs the docker SDK: "
                           "pip install 'cua[docker]'")
    candidates = [None]  # None: docker.from_env(), which honours DOCKER_HOST
    if not os.environ.get("DOCKER_HOST"):
        candidates.append(PODMAN_SOCKET)
    for base_url in candidates:
        try:
            engine = (docker.from_env() if base_url is None
                      else docker.DockerClient(base_url=base_url))
            engine.ping()
            return engine
        except DockerException:
            continue
    where = os.environ.get("DOCKER_HOST") or f"the default socket or {PODMAN_SOCKET}"
    raise DesktopError("backend", f"no Docker Engine API answers at {where}: start Docker, or "
                       "run scripts/setup-podman.sh and export the DOCKER_HOST it prints")


class DockerBackend:
    name = "docker"

    def __init__(self, image: str = "cua/desktop:dev", mem_limit: str = "2g", cpus: float = 1.0,
                 start_timeout_s: float = 60, owned: bool = True):
        """`owned` desktops are removed when this process ends, however it ends (see
        `cua.desktop.reaper`); `cua desktop up` starts unowned ones, which live until `cua
        desktop down`."""
        self.image, self.mem_limit, self.cpus = image, mem_limit, cpus
        self.start_timeout_s, self.owned = start_timeout_s, owned

    def start(self, network: bool = False, sudo: bool = False) -> Desktop:
        """A new desktop container; `network` gives its apps the engine's default network,
        `sudo` lets its user become root (`SUDO_ALLOWED`)."""
        engine = client()
        try:
            engine.images.get(self.image)
        except ImageNotFound:
            raise DesktopError("backend", f"image {self.image!r} is missing from the engine: build "
                               f"it with scripts/build-image.sh {self.image}") from None
        desktop_id, token = secrets.token_hex(4), secrets.token_urlsafe(24)
        root = Path(tempfile.mkdtemp(prefix=f"cua-{desktop_id}-"))  # private (0700): the guard
        shared = root / "run"
        shared.mkdir()
        shared.chmod(0o777)  # the container's user, whatever its uid on this host, writes here
        (shared / "token").write_text(token)
        (shared / "token").chmod(0o644)
        try:
            container = engine.containers.run(
                self.image, detach=True, name=f"cua-desktop-{desktop_id}",
                environment={"CUA_DESKTOP_ID": desktop_id}, labels={LABEL: desktop_id},
                volumes={str(shared): {"bind": SHARED, "mode": "rw"}},
                network_mode=None if network else "none",
                mem_limit=self.mem_limit, nano_cpus=int(self.cpus * 1e9), shm_size=SHM_SIZE,
                **(SUDO_ALLOWED if sudo else LOCKED_DOWN))
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        try:
            record = registry.DesktopRecord(id=desktop_id, backend="docker",
                                            base_url=f"{UNIX}{shared / 'control.sock'}",
                                            token=token, root=str(root), container=container.id)
            registry.save(record)
            if self.owned:
                REAPER.watch(desktop_id)
            desktop = Desktop(desktop_id, record.base_url, token, backend=self, network=network,
                              sudo=sudo)
            self._wait_healthy(desktop, container)
        except BaseException as exc:
            logs = _logs(container)
            try:
                _remove(container)
            except DockerException:
                pass  # the error being raised says more than a failed clean-up
            shutil.rmtree(root, ignore_errors=True)
            registry.forget(desktop_id)
            REAPER.release(desktop_id)
            if isinstance(exc, DesktopError) and logs:
                raise DesktopError("backend", f"{exc}; the container's log:\n{logs}") from None
            raise
        return desktop

    def stop(self, desktop_id: str) -> None:
        """Ask the server to shut down (best effort), then remove the container for good."""
        record = registry.load(desktop_id)
        registry.request_shutdown(record)
        try:
            container = client().containers.get(record.container or f"cua-desktop-{desktop_id}")
            _remove(container)
        except NotFound:
            pass
        if record.root:
            shutil.rmtree(record.root, ignore_errors=True)
        registry.forget(desktop_id)
        REAPER.release(desktop_id)

    def _wait_healthy(self, desktop: Desktop, container) -> None:
        """Wait until the server answers; fail early if the container exits."""
        def answering() -> bool:
            if desktop.answers():
                return True
            container.reload()
            if container.status in ("exited", "dead", "removing"):
                raise DesktopError("backend", f"desktop container exited "
                                   f"(status {container.status})")
            return False

        try:
            wait_until(answering, self.start_timeout_s, interval_s=0.25,
                       what=f"desktop {desktop.id} to answer at {desktop.base_url}")
        except WaitTimeout as exc:
            raise DesktopError("backend", str(exc)) from None


def _remove(container, attempts: int = 5) -> None:
    """Force-remove a container. The server exits after /shutdown, and podman refuses a removal
    that races with the container stopping by itself ("container state improper"): retry."""
    for attempt in range(attempts):
        try:
            container.remove(force=True)
            return
        except NotFound:
            return
        except DockerException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def _logs(container) -> str:
    try:
        return container.logs(tail=50).decode(errors="replace").strip()
    except DockerException:
        return ""
