"""A process that has imported the control server and forks one for each local desktop: the
servers share its imported modules, copy on write, instead of each building its own (about 50 MB
of Python objects a desktop), and start without the import's wait.

The zygote reads one JSON request a line on stdin ({argv, env, cwd, log, owned}) and answers each
with {"pid": …} on stdout; it exits once its stdin closes, that is when the process that started
it ends, and an owned server shuts down with it (`--parent-pid`: the zygote). A forked server runs
in a session of its own, writes its output to `log`, and carries its desktop's mark in its
environment block (`procs.MARK`, which `procs.marked_pids` reads from /proc/PID/environ: the
block the zygote was started with, so a placeholder of the id's length is there to overwrite)."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from cua.desktop import procs

PLACEHOLDER = "-" * 8  # as long as a desktop id (secrets.token_hex(4))


class ZygoteError(RuntimeError):
    """The zygote could not fork a server."""


class Zygote:
    """The zygote of this process, started on first use (and again if it died)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """In a forked copy of this process: the zygote is the parent's (two writers would mix
        their requests), so the copy lets go of it and starts its own when it needs one."""
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.stdout.close()
        self._proc = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The running zygote's pid, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def spawn(self, argv: list[str], env: dict[str, str], log: Path, owned: bool) -> int:
        """Fork a control server run with `argv` (its command-line arguments), `env` and this
        process's working directory, and return its pid. An `owned` one shuts down when this
        process ends."""
        request = json.dumps({"argv": argv, "env": env, "cwd": os.getcwd(), "log": str(log),
                              "owned": owned})
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "cua.desktop.zygote"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, text=True, start_new_session=True,
                    # OpenBLAS (numpy's) starts no threads in it: a fork copies only its caller
                    env={**os.environ, procs.MARK: PLACEHOLDER, "OPENBLAS_NUM_THREADS": "1"})
            try:
                self._proc.stdin.write(request + "\n")
                self._proc.stdin.flush()
                reply = self._proc.stdout.readline()
            except BrokenPipeError:
                reply = ""
            if not reply:
                raise ZygoteError(f"the desktop server zygote exited ({self._proc.wait()})")
            return json.loads(reply)["pid"]


def write_mark(desktop_id: str) -> None:
    """Put `desktop_id` in place of the placeholder in this process's environment block."""
    if len(desktop_id) != len(PLACEHOLDER):
        raise ValueError(f"a desktop id of {len(PLACEHOLDER)} characters, not {desktop_id!r}")
    block = Path("/proc/self/environ").read_bytes()
    offset = block.index(f"{procs.MARK}={PLACEHOLDER}\0".encode()) + len(procs.MARK) + 1
    env_start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[47])
    ctypes.memmove(env_start + offset, desktop_id.encode(), len(desktop_id))


def _serve(request: dict) -> None:
    """In the forked child: become the desktop's server, then exit with its status."""
    from cua.desktop import server

    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server waits for its own children
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        for fd, target in ((null, 0), (log, 1), (log, 2)):
            os.dup2(fd, target)
        os.close(null)
        os.close(log)
        os.environ.clear()
        os.environ.update(request["env"])
        write_mark(request["env"][procs.MARK])
        os.chdir(request["cwd"])
        owner = ["--parent-pid", str(os.getppid())] if request["owned"] else []
        server.main([*request["argv"], *owner])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BaseException:  # noqa: BLE001 — whatever it was goes to the desktop's log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever an import prints stays out of the replies
    from cua.desktop import server  # noqa: F401 — what every forked server shares

    gc.freeze()  # the imported objects stay out of collections: no writes to their pages
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps ended servers
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            replies.close()
            _serve(request)
        print(json.dumps({"pid": pid}), file=replies, flush=True)


if __name__ == "__main__":
    main()
