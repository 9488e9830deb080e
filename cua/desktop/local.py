"""The embedded default backend: each desktop is a control server process on this host (forked
by `cua.desktop.zygote`), owning its own Xvfb display, window manager, session bus, HOME, temp
dir and app profile."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path

from cua.desktop import procs, registry
from cua.desktop.client import Desktop, DesktopError
from cua.desktop.waiting import WaitTimeout, wait_until
from cua.desktop.zygote import Zygote, ZygoteError

ZYGOTE = Zygote()  # forks this process's local desktop servers


class LocalBackend:
    name = "local"

    def __init__(self, start_timeout_s: float = 30.0, owned: bool = True,
                 allow_commands: bool = False):
        """`owned` desktops shut down when this process dies; `cua desktop up` starts
        unowned ones, which live until `cua desktop down`. `allow_commands`: the code OSWorld's
        protocol sends (/execute, /setup/launch, …) runs on this host as the desktop's processes;
        without it those endpoints refuse."""
        self.start_timeout_s, self.owned = start_timeout_s, owned
        self.allow_commands = allow_commands

    def start(self, network: bool = False, sudo: bool = False) -> Desktop:
        """A new desktop; its apps share this host's network whatever `network` says, and its
        user is this host's, never root, whatever `sudo` says."""
        sweep_dead()
        desktop_id, token = secrets.token_hex(4), secrets.token_urlsafe(24)
        root = Path(tempfile.mkdtemp(prefix=f"cua-{desktop_id}-"))
        ready, token_file = root / "server.json", root / "token"
        token_file.write_text(token)  # root is private (0700); the server deletes the file
        log = root / "server.log"
        try:
            pid = ZYGOTE.spawn(["--root", str(root), "--id", desktop_id, "--ready-file",
                                str(ready), "--token-file", str(token_file),
                                *(["--allow-commands"] if self.allow_commands else [])],
                               {**os.environ, procs.MARK: desktop_id}, log, self.owned)
        except ZygoteError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise DesktopError("backend", f"local desktop server did not start: {exc}") from None
        with suppress(WaitTimeout):
            wait_until(lambda: ready.exists() or not procs.alive(pid), self.start_timeout_s,
                       what="the desktop server to start")
        if not ready.exists():
            log_tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            procs.kill_all(sorted({pid, *procs.marked_pids(desktop_id)}))
            shutil.rmtree(root, ignore_errors=True)
            raise DesktopError("backend", f"local desktop server did not start:\n{log_tail}")
        port = json.loads(ready.read_text())["port"]
        record = registry.DesktopRecord(id=desktop_id, backend="local",
                                        base_url=f"http://127.0.0.1:{port}", token=token,
                                        pid=pid, root=str(root))
        registry.save(record)
        desktop = Desktop(desktop_id, record.base_url, token, backend=self, network=network,
                          sudo=sudo)
        desktop.wait_until_up(self.start_timeout_s)
        return desktop

    def stop(self, desktop_id: str) -> None:
        """Ask the server to shut down, then make sure every process and file is gone."""
        record = registry.load(desktop_id)
        registry.request_shutdown(record)
        if record.pid:
            with suppress(WaitTimeout):  # whatever is left is killed below
                wait_until(lambda: not procs.alive(record.pid), 5,
                           what="the desktop server to exit")
        procs.kill_all(procs.marked_pids(desktop_id))
        if record.root:
            shutil.rmtree(record.root, ignore_errors=True)
        registry.forget(desktop_id)


def sweep_dead() -> None:
    """Stop what local desktops whose control server died (SIGKILL, OOM) left running: their
    marked processes (Xvfb, the window manager, the apps), state folders and records."""
    for record in registry.records():
        if record.backend != "local" or record.pid is None:
            continue
        marked = procs.marked_pids(record.id)
        if record.pid in marked:  # the server is alive (a reused pid would not carry the mark)
            continue
        procs.kill_all(marked)
        if record.root:
            shutil.rmtree(record.root, ignore_errors=True)
        registry.forget(record.id)
