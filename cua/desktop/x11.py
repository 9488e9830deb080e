"""The X side of a desktop: Xvfb, openbox and a session bus; windows and raw frames."""

from __future__ import annotations

import os
import subprocess
import threading
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import mss
import mss.exception
import numpy as np
from Xlib import Xatom
from Xlib import display as xdisplay
from Xlib.error import ConnectionClosedError, DisplayError, XError

from cua.desktop import procs
from cua.desktop.damage import DamageWatch
from cua.desktop.waiting import WaitTimeout, wait_until
from cua.envspec import Screen

X_ANSWER_TIMEOUT_S = 10.0  # an X server that takes longer to answer a request counts as hung
ACTIVATE_TIMEOUT_S = 2.0  # how long activating a window waits for the window manager


class XServerDown(RuntimeError):
    """The desktop's X server is not running (it died, or the desktop was never reset)."""


@dataclass(frozen=True)
class Window:
    id: str
    pid: int
    wm_class: str
    title: str
    modal: bool = False  # _NET_WM_STATE_MODAL: a dialog (an error message, a prompt)


class XStack:
    """Xvfb + openbox + dbus-daemon for one desktop, all children of this process."""

    def __init__(self, env: dict[str, str], run_dir: Path):
        self.env = env
        self.run_dir = run_dir
        self.display: str | None = None
        self.procs: list[subprocess.Popen] = []
        self.damage: DamageWatch | None = None  # what is drawn to the screen, as it is
        self._local = threading.local()  # mss and Xlib connections are per thread

    def start(self, screen: Screen, display: str | None = None) -> None:
        """Start Xvfb (on `display`, or the first free one), then the window manager and bus,
        and watch what is drawn."""
        self.display = display or None
        xvfb_args = ["-screen", "0", f"{screen.width}x{screen.height}x{screen.depth}",
                     "-nolisten", "tcp", "-noreset", "+extension", "RANDR", "-extension", "GLX"]
        if self.display:
            self.procs.append(self._spawn(["Xvfb", self.display, *xvfb_args]))
        else:
            read_fd, write_fd = os.pipe()
            self.procs.append(self._spawn(["Xvfb", "-displayfd", str(write_fd), *xvfb_args],
                                          pass_fds=(write_fd,)))
            os.close(write_fd)
            with os.fdopen(read_fd) as pipe:
                number = pipe.readline().strip()
            if not number:
                raise RuntimeError("Xvfb did not start (no display number reported)")
            self.display = f":{number}"
        self.env["DISPLAY"] = self.display
        self._wait(self._x_answers, "Xvfb to accept connections")
        bus = self.run_dir / "bus"
        bus.unlink(missing_ok=True)
        self.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
        self.procs.append(self._spawn(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                                       f"--address=unix:path={bus}"]))
        self.procs.append(self._spawn(["openbox", "--config-file", str(self._openbox_config())]))
        self._wait(lambda: bus.exists() and self._wm_running(), "openbox and the session bus")
        self.damage = DamageWatch(self.display)

    def alive(self, timeout_s: float = X_ANSWER_TIMEOUT_S) -> bool:
        """Its processes run and the X server answers within `timeout_s`."""
        return (bool(self.procs) and all(p.poll() is None for p in self.procs)
                and self._x_answers(timeout_s))

    def stop(self) -> None:
        self._local = threading.local()
        if self.damage is not None:
            self.damage.close()
            self.damage = None
        for proc in reversed(self.procs):
            procs.stop(proc, grace_s=1.0)
        self.procs = []

    def windows(self) -> list[Window]:
        """Top-level windows the window manager manages (its _NET_CLIENT_LIST)."""
        with self._connection() as conn:
            atom = conn.intern_atom
            root = conn.screen().root
            clients = root.get_full_property(atom("_NET_CLIENT_LIST"), Xatom.WINDOW)
            result = []
            for wid in clients.value if clients else ():
                window = conn.create_resource_object("window", wid)
                try:
                    name = window.get_full_property(atom("_NET_WM_NAME"), atom("UTF8_STRING"))
                    pid = window.get_full_property(atom("_NET_WM_PID"), Xatom.CARDINAL)
                    wm_class = window.get_wm_class() or ("", "")
                    state = window.get_full_property(atom("_NET_WM_STATE"), Xatom.ATOM)
                except XError:
                    continue  # the window went away meanwhile
                title = name.value.decode(errors="replace") if name else (
                    window.get_wm_name() or "")
                result.append(Window(f"0x{wid:08x}", int(pid.value[0]) if pid else 0,
                                     ".".join(wm_class), title,
                                     atom("_NET_WM_STATE_MODAL") in (state.value if state else ())))
            return result

    def activate(self, window_id: str) -> None:
        """Raise and focus a window, and wait (up to ACTIVATE_TIMEOUT_S) until the window manager
        reports it active: it handles the request after wmctrl returns, so input sent at once
        could reach the window that was active before."""
        self._run(["wmctrl", "-i", "-a", window_id])
        with suppress(WaitTimeout):  # a window that refuses focus stays where it is
            wait_until(lambda: self.active() == window_id, ACTIVATE_TIMEOUT_S, interval_s=0.01,
                       what=f"window {window_id} to become active")

    def active(self) -> str | None:
        """The active window's id (_NET_ACTIVE_WINDOW), or None while none is."""
        with self._connection() as conn:
            prop = conn.screen().root.get_full_property(conn.intern_atom("_NET_ACTIVE_WINDOW"),
                                                         Xatom.WINDOW)
        return f"0x{prop.value[0]:08x}" if prop and prop.value[0] else None

    def close(self, window_id: str) -> None:
        """Ask the window's app to close it (as its close button would)."""
        self._run(["wmctrl", "-i", "-c", window_id])

    def size(self, window_id: str | None = None) -> tuple[int, int]:
        """Width and height of a window, or of the screen."""
        with self._connection() as conn:
            if window_id is None:
                return conn.screen().width_in_pixels, conn.screen().height_in_pixels
            geometry = conn.create_resource_object("window", int(window_id, 16)).get_geometry()
            return geometry.width, geometry.height

    def pointer(self) -> tuple[int, int]:
        """Where the mouse pointer is on the screen."""
        with self._connection() as conn:
            where = conn.screen().root.query_pointer()
            return where.root_x, where.root_y

    def frame(self) -> np.ndarray:
        """The whole screen as an H×W×4 BGRA array (no encoding)."""
        self._require_xvfb()
        grabber = getattr(self._local, "grabber", None)
        try:
            if grabber is None:
                grabber = self._local.grabber = mss.MSS(display=self.display)
            shot = grabber.grab(grabber.monitors[1])
        except mss.exception.ScreenShotError as exc:
            self._local = threading.local()
            raise XServerDown(f"cannot capture the screen of {self.display}: {exc}") from None
        return np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)

    @contextmanager
    def _connection(self):
        """This thread's connection to the desktop's X server (made once, dropped on an error)."""
        self._require_xvfb()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = xdisplay.Display(self.display)
        try:
            yield conn
        except (ConnectionClosedError, OSError):
            self._local.conn = None
            raise XServerDown(f"lost the connection to the X server of {self.display}") from None

    def _require_xvfb(self) -> None:
        if not self.procs or self.procs[0].poll() is not None:
            self._local = threading.local()
            raise XServerDown(f"the X server of this desktop is not running "
                              f"({'it exited' if self.procs else 'not started'}): reset it")

    def _spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(argv, env=self.env, cwd=self.env.get("HOME"),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=10,
                              check=False)

    def _x_answers(self, timeout_s: float = X_ANSWER_TIMEOUT_S) -> bool:
        """The X server answers a request within `timeout_s`: a round trip on a connection of a
        thread of its own, so that a server that accepts but never answers keeps only that
        thread waiting (a server that is gone refuses the connection at once)."""
        answered = threading.Event()

        def ask() -> None:
            with suppress(DisplayError, ConnectionClosedError, OSError):
                conn = xdisplay.Display(self.display)
                try:
                    conn.get_input_focus()
                    answered.set()
                finally:
                    conn.close()

        asking = threading.Thread(target=ask, name=f"x-answers{self.display}", daemon=True)
        asking.start()
        asking.join(timeout_s)
        return answered.is_set()

    def _wm_running(self) -> bool:
        return self._run(["wmctrl", "-m"]).returncode == 0

    def _openbox_config(self) -> Path:
        """Openbox without decorations that move apps around: new windows maximised (but GNOME
        Terminal's); Ctrl+Alt+T opens GNOME Terminal, as on OSWorld's Ubuntu."""
        path = self.run_dir / "openbox.xml"
        path.write_text(OPENBOX_RC)
        return path

    @staticmethod
    def _wait(check, what: str) -> None:
        """Wait up to 10 s for `check`; a RuntimeError (the server's 409 "state") if in vain."""
        try:
            wait_until(check, 10, interval_s=0.01, what=what)
        except WaitTimeout as exc:
            raise RuntimeError(str(exc)) from None


OPENBOX_RC = """<?xml version="1.0" encoding="UTF-8"?>
<openbox_config xmlns="http://openbox.org/3.4/rc">
  <focus><focusNew>yes</focusNew><followMouse>no</followMouse></focus>
  <placement><policy>Smart</policy></placement>
  <desktops><number>1</number></desktops>
  <keyboard>
    <keybind key="C-A-t"><action name="Execute"><command>gnome-terminal</command></action></keybind>
  </keyboard>
  <applications>
    <application type="normal"><maximized>yes</maximized></application>
    <!-- GNOME Terminal opens at its profile's size, as on GNOME (OSWorld's tasks set it) -->
    <application class="Gnome-terminal"><maximized>no</maximized></application>
  </applications>
</openbox_config>
"""
