"""Child processes of a desktop: start them marked, find them by mark, stop them for good."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

MARK = "CUA_DESKTOP_ID"


def marked_pids(desktop_id: str) -> list[int]:
    """PIDs of live processes whose environment carries `CUA_DESKTOP_ID=desktop_id`, never
    this process nor its ancestors (a container's init inherits the mark too)."""
    needle = f"{MARK}={desktop_id}".encode()
    skip = set(_lineage())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return sorted(pids)


def _lineage() -> list[int]:
    """This process and its ancestors up to PID 1."""
    chain, pid = [], os.getpid()
    while pid > 0:
        chain.append(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return chain


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_all(pids: list[int], grace_s: float = 2.0) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL whatever is left."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 1.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.02)
        pids = [p for p in pids if alive(p)]
        if not pids:
            return


def stop(proc: subprocess.Popen | None, grace_s: float = 2.0) -> None:
    """Stop a child started with `start_new_session=True`, its whole process group included."""
    if proc is None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    group = _group_members(pgid) if pgid else []
    kill_all(sorted({proc.pid, *group}), grace_s)
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        pass


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    members.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return members


def pss_bytes(pids: list[int]) -> int:
    """Summed proportional set size of `pids` (falls back to RSS where PSS is unavailable)."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)
        value = fields.get("Pss") or fields.get("Rss") or "0 kB"
        total += int(value.split()[0]) * 1024
    return total


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by `pids` (gone processes count as 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
