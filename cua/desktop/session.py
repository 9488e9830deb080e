"""One live desktop, driven from inside: the X stack, the apps, actions, settling, screenshots."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from cua.actions import Action, validate
from cua.content.check import check_content, content_kind
from cua.desktop import apps, atspi, procs
from cua.desktop.api import ExecuteReport, Health, ResetReport, Screen, WindowInfo
from cua.desktop.inputs import InputDriver
from cua.desktop.settle import min_wait, wait_settled
from cua.desktop.waiting import WaitTimeout, wait_until
from cua.desktop.x11 import Window, XStack
from cua.envspec import APP_CONTENT, EnvSpec
from cua.records import ActionResult, SettleReport

DIALOG_GRACE_S = 2.0  # how long an app may show a modal dialog instead of its window
STOP_ROUNDS = 3  # times stop_apps looks for processes started while it ends the others
X_PROGRAMS = ("Xvfb", "openbox", "dbus-daemon")  # the X stack's, which stop_apps leaves running
READY_QUIET_S = 1.0  # how long a screen and its apps stay still before a desktop counts as ready


class AppNotReady(RuntimeError):
    """An app did not show its window in time (a document it cannot open, a crash, …)."""


class Session:
    """Owns every process of one desktop; `reset` brings it to a ready state for an env spec.
    Its processes are those carrying its mark and, where `owns_descendants` (the control server,
    whose children are all the desktop's), every descendant of this process, orphans it adopts
    included."""

    def __init__(self, root: Path, desktop_id: str, display: str | None = None,
                 owns_descendants: bool = False):
        self.root, self.id, self.requested_display = root, desktop_id, display
        self.owns_descendants = owns_descendants
        if owns_descendants:
            procs.adopt_orphans()
        self.home, self.run_dir, self.profile = root / "home", root / "run", root / "lo-profile"
        for d in (self.home / "Desktop", self.run_dir, root / "tmp"):  # a home as OSWorld's
            d.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)
        apps.program_stand_ins(root / "bin")
        self.env = {
            "PATH": f"{root / 'bin'}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
            "LANG": "C.UTF-8", "HOME": str(self.home), "TMPDIR": str(root / "tmp"),
            "XDG_RUNTIME_DIR": str(self.run_dir), "XDG_SESSION_TYPE": "x11",
            "SAL_USE_VCLPLUGIN": "gtk3", procs.MARK: desktop_id,
        }
        self.x = XStack(self.env, self.run_dir)
        self.spec: EnvSpec | None = None
        self.inputs = InputDriver(self.env)
        self.inputs.after_paste = self._settle_paste
        self.app_procs: dict[str, subprocess.Popen] = {}
        self.opened: dict[str, str] = {}
        self._verified: set[str] = set()  # sha256 of contents that opened cleanly

    # -- lifecycle --------------------------------------------------------------------------------

    def reset(self, spec: EnvSpec, files: list[str]) -> ResetReport:
        """Close the apps, restart the X stack if it died or the screen changed, seed the
        profile, open `files` (home-relative) in their apps and wait until the screen settles."""
        start = time.monotonic()
        paths = [self.resolve(f) for f in files]
        plan = {str(p): spec.app_for(content_kind(p)) for p in paths}
        for path in paths:
            self._check(path)
        self.stop_apps()
        self.inputs.clear_clipboard()
        x_restart = not self.x.alive() or self.spec is None or self.spec.screen != spec.screen
        if x_restart:
            self.x.stop()
            self.x.start(spec.screen, self.requested_display)
            self.inputs.reconnect()
        self.spec = spec
        self.x.damage.interval_s = spec.settle.interval_s
        self.inputs.wait_s = spec.settle.wait_action_s
        apps.seed_home(self.home, self.profile, spec)
        self.opened = {}
        for app_spec in spec.apps:
            mine = [Path(p) for p, app in plan.items() if app == app_spec.app]
            if mine or spec.start_apps:
                self._start_app(app_spec.app, mine)
        settle = self.settle(timeout_s=spec.ready_timeout_s)
        return ResetReport(display=self.x.display, x_restarted=x_restart, windows=self.windows(),
                           opened=self.opened, seconds=time.monotonic() - start, settle=settle)

    def open(self, path: str, app: str | None = None) -> list[WindowInfo]:
        """Open a home-relative file in `app` (default: the env's app for its kind)."""
        spec = self._require_spec()
        target = self.resolve(path)
        app = app or spec.app_for(content_kind(target))
        if content_kind(target) not in APP_CONTENT[app]:
            raise ValueError(f"{app} cannot open {target.name}")
        self._check(target)
        self._start_app(app, [target])
        self.settle(timeout_s=spec.ready_timeout_s)
        return self.windows()

    def open_folder(self, path: str) -> list[WindowInfo]:
        """Open a home-relative folder in the file manager."""
        target = self.resolve(path)
        if not target.is_dir():
            raise ValueError(f"{path} is not a folder")
        self._start_app("files", [target])
        self.settle(timeout_s=self._require_spec().ready_timeout_s)
        return self.windows()

    def launch(self, app: str) -> list[WindowInfo]:
        self._start_app(app, [])
        self.settle(timeout_s=self._require_spec().ready_timeout_s)
        return self.windows()

    def settle(self, before=None, timeout_s: float | None = None, ready: bool = False
               ) -> SettleReport:
        """Wait for a still screen while the desktop's apps idle (the X server's own work does not
        count): the env's settle policy over the processes running now, or with `ready` (after
        commands that did not wait for the desktop: OSWorld's set-up launches apps and returns)
        still for `READY_QUIET_S` while every process, started before or since, idles, at most
        `ready_timeout_s`."""
        return self._settle(before, timeout_s, ready)[0]

    def _settle(self, before=None, timeout_s: float | None = None, ready: bool = False,
                min_wait_s: float | None = None) -> tuple[SettleReport, np.ndarray]:
        """`settle`, and the last frame it saw (the settled screen, when it settled);
        `min_wait_s` replaces the minimum wait the policy and the apps running set."""
        spec = self._require_spec()
        running = self._app_processes()
        update = {"min_wait_s": min_wait(spec.settle, running.values())
                  if min_wait_s is None else min_wait_s}
        if ready:
            update |= {"quiet_s": READY_QUIET_S, "timeout_s": spec.ready_timeout_s}
        elif timeout_s is not None:
            update["timeout_s"] = timeout_s
        policy = spec.settle.model_copy(update=update)
        # ready: every process, those started meanwhile included; else those running now
        cpu = procs.BusyClock((lambda: list(self._app_processes())) if ready
                              else (lambda: list(running)))
        draws = self.x.damage if policy.use_damage else None
        return wait_settled(self.x.frame, policy, before, cpu=cpu, draws=draws)

    def _settle_paste(self) -> None:
        """After the app fetched pasted text: its processes idle and its screen still, so the
        keys typed next come after the text (LibreOffice inserts it after a nested event loop
        that would take those keys first)."""
        self._settle(min_wait_s=0.0)

    def stop_apps(self) -> None:
        """End every process of the desktop but its X stack, those started while they were being
        ended included (an app that crashes on SIGTERM can start a crash handler)."""
        for proc in self.app_procs.values():
            procs.stop(proc)
        self.app_procs = {}
        keep = {p.pid for p in self.x.procs}
        for _ in range(STOP_ROUNDS):
            left = [p for p in self.pids() if p not in keep and procs.comm(p) not in X_PROGRAMS]
            if not left:
                break
            procs.kill_all(left)
        if self.owns_descendants:
            procs.reap_orphans(keep)

    def clear_home(self) -> None:
        """Stop the apps and empty the home (files, app profiles, whatever an earlier episode
        left), leaving the folders a fresh one has."""
        self.stop_apps()
        for child in self.home.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        (self.home / "Desktop").mkdir()

    def close(self) -> None:
        self.stop_apps()
        self.x.stop()
        procs.kill_all(self.pids())

    def pids(self) -> list[int]:
        """The desktop's live processes."""
        return procs.marked_pids(self.id, descendants=self.owns_descendants)

    # -- observation and action -------------------------------------------------------------------

    def screenshot(self) -> bytes:
        return encode_png(self.x.frame())

    def execute(self, actions: list[Action], settle: bool = True,
                budget_s: float = math.inf, observe: bool = False) -> ExecuteReport:
        """Validate every action first (nothing runs if one is invalid), then run each and wait
        for the screen to settle after it. A failure stops the list and is reported, not raised;
        so does the time budget: no action starts once `budget_s` has passed. With `observe`, the
        report also holds the screen after the last action (a step's next observation)."""
        spec = self._require_spec()
        checked = [validate(a, spec.screen.width, spec.screen.height) for a in actions]
        start, results, frame = time.monotonic(), [], None
        for action in checked:
            t0 = time.monotonic()
            if t0 - start > budget_s:
                results.append(ActionResult(action=action, ok=False, seconds=0.0, error=(
                    f"not run: the request's {budget_s:g} s budget was spent after "
                    f"{len(results)} of {len(checked)} actions")))
                break
            before = self.x.frame() if settle else None
            frame = None
            try:
                self.inputs.run(action)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                results.append(ActionResult(action=action, ok=False, error=str(exc),
                                            seconds=time.monotonic() - t0))
                break
            if settle:
                report, last = self._settle(before)
                frame = last if report.settled else None
                if frame is not None and spec.settle.recheck_s:
                    time.sleep(spec.settle.recheck_s)
                    report.stale = not np.array_equal(self.x.frame(), frame)
            else:
                report = None
            results.append(ActionResult(action=action, ok=True, seconds=time.monotonic() - t0,
                                        settle=report))
        if observe:  # a settled screen is as its last frame shows it: no need to grab another
            png = encode_png(frame) if frame is not None else self.screenshot()
            screen = Screen.of(png, self.windows())
        else:
            screen = None
        return ExecuteReport(results=results, seconds=time.monotonic() - start, screen=screen)

    def windows(self) -> list[WindowInfo]:
        if not self.x.alive():
            return []
        return [WindowInfo(**vars(w)) for w in self.x.windows()]

    def activate(self, window_id: str) -> None:
        self.x.activate(window_id)

    def health(self) -> Health:
        x_ok = self.x.alive()
        live = [w for w in self.x.windows() if procs.alive(w.pid)] if x_ok else []
        app_ok = {a.app: any(apps.WINDOW_CLASS[a.app] in w.wm_class.lower() for w in live)
                  for a in (self.spec.apps if self.spec and self.spec.start_apps else ())}
        return Health(ok=x_ok and all(app_ok.values()) and self.spec is not None, x_server=x_ok,
                      apps=app_ok, display=self.x.display,
                      env=self.spec.name if self.spec else None)

    # -- files ------------------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """A path inside the desktop's home; anything escaping it is refused."""
        target = (self.home / path).resolve()
        if not target.is_relative_to(self.home.resolve()):
            raise PermissionError(f"{path}: outside the desktop's home")
        return target

    def upload(self, path: str) -> Upload:
        """A new file at `path` in the home, written through `Upload`."""
        target = self.resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return Upload(self.home.resolve(), target)

    # -- internals --------------------------------------------------------------------------------

    def _require_spec(self) -> EnvSpec:
        if self.spec is None:
            raise RuntimeError("desktop not reset yet: call reset with an env spec first")
        return self.spec

    def _app_processes(self) -> dict[int, str]:
        """The desktop's processes but Xvfb, whose CPU settling watches (once per action), with
        their names: where this process owns every process of the desktop, its descendants are
        they."""
        pids = procs.descendant_pids() if self.owns_descendants else self.pids()
        named = {pid: procs.comm(pid) for pid in pids}
        return {pid: name for pid, name in named.items() if name != "Xvfb"}

    def _check(self, path: Path) -> None:
        """Prove the file opens before an app sees it (once per distinct content)."""
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in self._verified:
            check_content(path)
            self._verified.add(digest)

    def _start_app(self, app: str, files: list[Path]) -> None:
        argv = apps.command(app, files, self.home, self.profile)
        log = self.root / "logs" / f"{app}.log"  # outside the home: the agent never sees it
        log.parent.mkdir(exist_ok=True)
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, env=self.env, cwd=self.home, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.app_procs.setdefault(app, proc)
        self._wait_window(app, files, proc, log)
        self.opened.update({str(f.relative_to(self.home)): app for f in files})

    def _wait_window(self, app: str, files: list[Path], proc: subprocess.Popen,
                     log: Path) -> None:
        """Block until `app` maps a window (one per document for office apps); fail early when a
        modal dialog (an error message, a prompt) stands instead for `DIALOG_GRACE_S`. A window
        that never comes is reported with how the app's process ended and what it printed."""
        spec = self._require_spec()
        wm_class = apps.WINDOW_CLASS[app]
        wanted = [f.name for f in files] if app in apps.OFFICE_APPS else []
        what = ", ".join(wanted) or app
        dialog_since = math.inf

        def shown() -> bool:
            nonlocal dialog_since
            windows = self.x.windows()
            ours = [w for w in windows if wm_class in w.wm_class.lower()]
            loading = app == "browser" and files and all(
                w.title.startswith(apps.BROWSER_BLANK_TITLES) for w in ours)
            if ours and not loading and all(any(n in w.title for w in windows) for n in wanted):
                return True
            now, dialogs = time.monotonic(), [w for w in windows if w.modal]
            dialog_since = min(dialog_since, now) if dialogs else math.inf
            if now - dialog_since >= DIALOG_GRACE_S:
                raise self._stopped_at(dialogs, f"{what}: {app} shows a dialog instead of its window")
            return False

        try:
            wait_until(shown, spec.ready_timeout_s, what=f"{app}'s window")
        except WaitTimeout:
            titles = "; ".join(w.title for w in self.x.windows()) or "none"
            raise AppNotReady(f"{what}: {app} showed no window within "
                              f"{spec.ready_timeout_s:.0f} s (windows: {titles}){_ended(proc, log)}"
                              ) from None

    def _stopped_at(self, dialogs: list[Window], message: str) -> AppNotReady:
        """`message` with the dialogs' titles and what they say (read through AT-SPI), or where
        that cannot be read, their windows' titles and classes."""
        said = [f"{title!r}: {text}" for title, text in atspi.dialog_texts(self.env)] or [
            f"{w.title!r} ({w.wm_class} window; its text could not be read)" for w in dialogs]
        return AppNotReady(f"{message}: {'; '.join(said)}")


def _ended(proc: subprocess.Popen, log: Path, lines: int = 5) -> str:
    """How an app's process ended (a launcher handing its files to a running instance exits 0:
    not worth saying) and the last lines it printed."""
    code = proc.poll()
    said = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    ended = f"; {Path(proc.args[0]).name} exited with status {code}" if code else ""
    return ended + (f"; it printed: {' | '.join(said[-lines:])[-600:]}" if said else "")


def encode_png(frame: np.ndarray, level: int = 1) -> bytes:
    """BGRA frame → lossless RGB PNG with OpenCV at zlib level 1 and no row filter: on 1920×1080
    office screens about 3× as fast as Pillow at level 1 (which filters every row), files about
    10 % larger."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR), [
        cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE])
    if not ok:
        raise ValueError(f"cannot encode a {frame.shape} frame as PNG")
    return data.tobytes()


class Upload:
    """A file being written into the home: an exclusive new file (created, never opened through a
    link) in its folder, renamed over the target once complete. The folder is opened without
    following a link and checked to be inside the home, and both names are taken relative to it,
    so nothing planted in the home can redirect the write. As a context manager it commits when
    its block ends and aborts (the partial file removed) when the block raises."""

    def __init__(self, home: Path, target: Path):
        self.folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        if not Path(os.readlink(f"/proc/self/fd/{self.folder}")).is_relative_to(home):
            os.close(self.folder)
            raise PermissionError(f"{target}: outside the desktop's home")
        self.target, self.partial = target, f".{target.name}.{secrets.token_hex(8)}.part"
        handle = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o644, dir_fd=self.folder)
        self.file = os.fdopen(handle, "wb")
        self.size = 0  # bytes written so far

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, error_type, *_) -> None:
        if error_type is None:
            self.commit()
        else:
            self.abort()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def commit(self) -> Path:
        self.file.close()
        os.replace(self.partial, self.target.name, src_dir_fd=self.folder,
                   dst_dir_fd=self.folder)
        os.close(self.folder)
        return self.target

    def abort(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.partial, dir_fd=self.folder)
        os.close(self.folder)
