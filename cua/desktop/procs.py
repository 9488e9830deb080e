"""Child processes of a desktop: start them marked, find them by mark, stop them for good."""

from __future__ import annotations

import ctypes
import glob
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import psutil

from cua.desktop.waiting import WaitTimeout, wait_until

MARK = "CUA_DESKTOP_ID"
SHARED_TMP = Path("/tmp")
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36  # prctl options, <linux/prctl.h>


def prctl(option: int, value: int) -> None:
    """Set a property of this process (prctl(2)); OSError if the kernel refuses."""
    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


def adopt_orphans() -> None:
    """Make this process the parent of its orphaned descendants instead of init: what an app
    forks away from itself (Chromium's crash handlers, a daemon's double fork) stays among this
    process's descendants. `reap_orphans` collects them once they end."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def reap_orphans(keep: set[int]) -> None:
    """Collect every ended child of this process but `keep` (those whose `Popen` waits for them),
    so adopted orphans do not pile up as zombies. Call it while no other thread waits for a
    child: that thread would read exit status 0."""
    for child in psutil.Process().children():
        with suppress(psutil.Error, ChildProcessError):
            if child.pid not in keep and child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)


def marked_pids(desktop_id: str, descendants: bool = False) -> list[int]:
    """PIDs of live processes whose environment carries `CUA_DESKTOP_ID=desktop_id` and, with
    `descendants`, of every live descendant of this process, marked or not (Chromium rewrites its
    environment block, mark included, to retitle its processes); never this process nor its
    ancestors (a container's init inherits the mark too). One read of the process table."""
    me = psutil.Process()
    skip = {me.pid, *(p.pid for p in me.parents())}
    live = [p for p in psutil.process_iter(["environ", "ppid", "status"])
            if p.pid not in skip and p.info["status"] != psutil.STATUS_ZOMBIE]
    found = {p.pid for p in live if (p.info["environ"] or {}).get(MARK) == desktop_id}
    if descendants:
        children = defaultdict(list)
        for proc in live:
            children[proc.info["ppid"]].append(proc.pid)
        parents = [me.pid]
        while parents:
            kids = children[parents.pop()]
            found.update(kids)
            parents += kids
    return sorted(found)


def descendant_pids() -> list[int]:
    """Live descendants of this process, the orphans it adopted included: a fifth of the cost of
    `marked_pids`, which reads every process's environment."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        with suppress(psutil.Error):  # it ended meanwhile
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        return _runs(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def kill_all(pids: list[int], grace_s: float = 2.0) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL whatever is left, and remove the sockets they
    listened on in the shared /tmp. A zombie counts as gone: orphans wait for init to reap them,
    which can take seconds."""
    sockets = shared_sockets(pids)
    left = _signal(_processes(pids), signal.SIGTERM, grace_s)
    if left:
        _signal(left, signal.SIGKILL, 1.0)
    for path in sockets:
        with suppress(OSError):
            if path.is_socket():
                path.unlink()


def shared_sockets(pids: list[int]) -> list[Path]:
    """The Unix sockets `pids` listen on in the shared /tmp, which a process ended by a signal
    leaves behind: LibreOffice makes its single-instance pipe there whatever TMPDIR says, one name
    per profile, so each desktop would leave one."""
    paths = set()
    for proc in _processes(pids):
        with suppress(psutil.Error):
            for conn in proc.net_connections(kind="unix"):
                if conn.laddr and Path(conn.laddr).parent == SHARED_TMP:
                    paths.add(Path(conn.laddr))
    return sorted(paths)


def _signal(procs: list[psutil.Process], sig: int, wait_s: float) -> list[psutil.Process]:
    """Send `sig` to `procs`, wait up to `wait_s` for them to end; those still running."""
    for proc in procs:
        with suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
    with suppress(WaitTimeout):
        wait_until(lambda: not any(map(_runs, procs)), wait_s)
    return [p for p in procs if _runs(p)]


def _runs(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop(proc: subprocess.Popen | None, grace_s: float = 2.0) -> None:
    """Stop a child started with `start_new_session=True`, its whole process group included."""
    if proc is None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    group = group_members(pgid) if pgid else []
    kill_all(sorted({proc.pid, *group}), grace_s)
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        pass


def group_members(pgid: int) -> list[int]:
    """PIDs of the processes in process group `pgid` (zombies included)."""
    members = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid:
                members.append(pid)
        except OSError:
            continue
    return members


def _processes(pids: list[int]) -> list[psutil.Process]:
    """The processes of `pids` that still exist."""
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return found


def pss_bytes(pids: list[int]) -> int:
    """Summed proportional set size of `pids` (falls back to RSS where PSS is unavailable)."""
    total = 0
    for proc in _processes(pids):
        try:
            memory = proc.memory_full_info()
        except psutil.Error:
            continue
        total += memory.pss or memory.rss
    return total


def comm(pid: int) -> str:
    """The process's name ("" once it is gone)."""
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return ""


class BusyClock:
    """Seconds the threads of `pids()` have run since the first call, from each thread's
    scheduler counter (/proc/PID/task/TID/schedstat, in ns: an app that works for a millisecond is
    told from an idle one, where CPU time in 10 ms ticks is not). A thread found runnable adds the
    whole time since the previous call: an app starved of a core has not run yet but is busy. A
    thread that ends takes its last moments along."""

    def __init__(self, pids: Callable[[], list[int]], clock: Callable[[], float] = time.monotonic):
        self.pids, self.clock = pids, clock
        self.total, self._seen, self._last = 0.0, None, 0.0

    def __call__(self) -> float:
        now, ran, runnable = self.clock(), {}, False
        for pid in self.pids():
            for task in glob.glob(f"/proc/{pid}/task/*"):
                try:
                    state = Path(task, "stat").read_text().rpartition(")")[2].split()[0]
                    ran[task] = int(Path(task, "schedstat").read_text().split()[0]) / 1e9
                except (OSError, ValueError, IndexError):
                    continue  # it ended meanwhile
                runnable = runnable or state == "R"
        if self._seen is not None:
            self.total += sum(max(0.0, seconds - self._seen.get(task, 0.0))
                              for task, seconds in ran.items())
            if runnable:
                self.total += now - self._last
        self._seen, self._last = ran, now
        return self.total
