"""Executes canonical actions on an X display through pyautogui (XTest, in this process), and
pastes from the clipboard the text no key of the keymap types."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable

from Xlib import XK
from Xlib.display import Display
from Xlib.error import ConnectionClosedError, DisplayError, XError

from cua.actions import (
    KEYSYMS,
    Action,
    CallUser,
    Click,
    Drag,
    Finished,
    Hotkey,
    LeftDouble,
    RightSingle,
    Scroll,
    Type,
    Wait,
)
from cua.desktop import clipboard

SCROLL_CLICKS = 5
SCROLL_GAP_S = 0.02
DOUBLE_CLICK_GAP_S = 0.06
DRAG_GAP_S = 0.05
TYPE_GAP_S = 0.002
KEY_GAP_S = 0.1   # LibreOffice drops key presses that follow each other too closely
PYAUTOGUI_NAMES = {"super": "win", "menu": "apps"}  # canonical key names pyautogui spells otherwise
PRINTABLE = [chr(c) for c in range(0x20, 0x7F)]  # ASCII keysyms are their code points
# Runs of printable ASCII are typed as keystrokes; anything else is pasted from the clipboard.
_SEGMENTS = re.compile(r"(\n|\t|[\x20-\x7e]+|[^\x20-\x7e\n\t]+)")


def _pyautogui(display: str):
    """pyautogui, imported with `display` as DISPLAY (it connects at import) and no pauses or
    fail-safe corner: a click at (0, 0) is a legitimate action here."""
    if "pyautogui" not in sys.modules:
        previous = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = display
        try:
            import pyautogui
        finally:
            if previous is None:
                del os.environ["DISPLAY"]
            else:
                os.environ["DISPLAY"] = previous
    import pyautogui
    pyautogui.PAUSE, pyautogui.FAILSAFE = 0, False
    return pyautogui


def keymap(display: Display, shifted) -> dict[str, int | None]:
    """pyautogui key name → the keycode to press. A printable character maps to the key that
    types it at the shift level pyautogui presses (`shifted(char)`): pyautogui's own table takes
    a keysym's first keycode, and on the default X keymap that of `<` is the less/greater key,
    which it shifts into `>`. None where the keymap has no such key."""
    codes: dict[str, int | None] = {}
    for char in PRINTABLE:
        level = 1 if shifted(char) else 0
        codes[char] = next((code for code, index in display.keysym_to_keycodes(ord(char))
                            if index == level), None)
    for name, keysym in KEYSYMS.items():
        if len(name) > 1:
            code = display.keysym_to_keycode(XK.string_to_keysym(keysym))
            codes[PYAUTOGUI_NAMES.get(name, name)] = code or None
    return codes


class InputDriver:
    """Runs actions on one display. `env` carries DISPLAY (and the desktop's HOME). pyautogui
    holds one X connection per process: one desktop's driver per process (its control server)."""

    def __init__(self, env: dict[str, str], wait_s: float = 1.0):
        self.env = env
        self.wait_s = wait_s
        self._last_key = 0.0
        self._gui = None
        self._clipboard: clipboard.Clipboard | None = None
        self.after_paste: Callable[[], None] | None = None  # waits until the app took it in

    def reconnect(self) -> None:
        """Connect afresh at the next action (the X server was restarted)."""
        self._gui = None
        self.clear_clipboard()

    def clear_clipboard(self) -> None:
        """Empty the clipboard of what the last paste left there (a new episode starts)."""
        if self._clipboard is not None:
            self._clipboard.close()
            self._clipboard = None

    def run(self, action: Action) -> None:
        try:
            self._run(action)
        except (ConnectionClosedError, DisplayError, XError, OSError) as exc:
            self._gui = None
            raise RuntimeError(f"input to the X server failed: {exc}") from None

    def _run(self, action: Action) -> None:
        gui = self._connected()
        match action:
            case Click(x=x, y=y):
                gui.click(x, y)
            case LeftDouble(x=x, y=y):
                gui.click(x, y, clicks=2, interval=DOUBLE_CLICK_GAP_S)
            case RightSingle(x=x, y=y):
                gui.click(x, y, button="right")
            case Drag(x1=x1, y1=y1, x2=x2, y2=y2):
                gui.mouseDown(x1, y1)
                for x, y in (((x1 + x2) // 2, (y1 + y2) // 2), (x2, y2)):
                    time.sleep(DRAG_GAP_S)
                    gui.moveTo(x, y)
                time.sleep(DRAG_GAP_S)
                gui.mouseUp(x2, y2)
            case Hotkey(keys=keys):
                self._keys([PYAUTOGUI_NAMES.get(k, k) for k in keys])
            case Type(content=content):
                self._type(content)
            case Scroll(x=x, y=y, direction=direction):
                wheel = gui.scroll if direction in ("up", "down") else gui.hscroll
                for _ in range(SCROLL_CLICKS):
                    wheel(1 if direction in ("up", "right") else -1, x, y)
                    time.sleep(SCROLL_GAP_S)
            case Wait():
                time.sleep(self.wait_s)
            case Finished() | CallUser():
                pass

    def _connected(self):
        """pyautogui pointed at this desktop's display, with keys for every printable character."""
        if self._gui is None:
            gui = _pyautogui(self.env["DISPLAY"])
            from pyautogui import _pyautogui_x11 as x11
            connection = Display(self.env["DISPLAY"])
            try:
                x11._display.close()
            except (ConnectionClosedError, OSError):
                pass  # the connection to an X server that is gone
            x11._display = connection
            x11.keyboardMapping.update(keymap(connection, gui.isShiftCharacter))
            self._gui = gui
        return self._gui

    def _type(self, text: str) -> None:
        codes = self._keymap()
        for segment in _SEGMENTS.findall(text):
            if segment == "\n":
                self._keys(["enter"])
            elif segment == "\t":
                self._keys(["tab"])
            elif all(codes.get(char) for char in segment):
                self._gui.write(segment, interval=TYPE_GAP_S)
            else:  # exact for any Unicode text, unlike synthetic key events
                self._paster().paste(segment, lambda: self._keys(["ctrl", "v"]))
                if self.after_paste:  # the app may still be inserting it: keys would overtake
                    self.after_paste()

    def _paster(self) -> clipboard.Clipboard:
        if self._clipboard is None or not self._clipboard.alive:
            self._clipboard = clipboard.Clipboard(self.env["DISPLAY"])
        return self._clipboard

    def _keys(self, names: list[str]) -> None:
        missing = [n for n in names if not self._keymap().get(n)]
        if missing:
            raise RuntimeError(f"no key of this display's keymap types {', '.join(missing)}")
        gap = KEY_GAP_S - (time.monotonic() - self._last_key)
        if gap > 0:
            time.sleep(gap)
        self._gui.hotkey(*names)
        self._last_key = time.monotonic()

    def _keymap(self) -> dict[str, int | None]:
        from pyautogui import _pyautogui_x11 as x11
        return x11.keyboardMapping
