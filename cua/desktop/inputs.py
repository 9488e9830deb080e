"""Executes canonical actions on an X display with xdotool (and xclip for non-ASCII text)."""

from __future__ import annotations

import re
import subprocess
import time

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

SCROLL_BUTTONS = {"up": "4", "down": "5", "left": "6", "right": "7"}
SCROLL_CLICKS = 5
KEY_GAP_S = 0.1   # LibreOffice drops key presses that follow each other too closely
# Runs of printable ASCII are typed as keystrokes; anything else is pasted from the clipboard.
_SEGMENTS = re.compile(r"(\n|\t|[\x20-\x7e]+|[^\x20-\x7e\n\t]+)")


class InputDriver:
    """Runs actions on one display. `env` carries DISPLAY (and the desktop's HOME)."""

    def __init__(self, env: dict[str, str], wait_s: float = 1.0):
        self.env = env
        self.wait_s = wait_s
        self._last_key = 0.0

    def run(self, action: Action) -> None:
        match action:
            case Click(x=x, y=y):
                self._xdotool("mousemove", x, y, "click", "1")
            case LeftDouble(x=x, y=y):
                self._xdotool("mousemove", x, y, "click", "--repeat", "2",
                              "--delay", "60", "1")
            case RightSingle(x=x, y=y):
                self._xdotool("mousemove", x, y, "click", "3")
            case Drag(x1=x1, y1=y1, x2=x2, y2=y2):
                self._xdotool("mousemove", x1, y1, "mousedown", "1", "sleep", "0.05",
                              "mousemove", (x1 + x2) // 2, (y1 + y2) // 2,
                              "sleep", "0.05", "mousemove", x2, y2, "sleep", "0.05",
                              "mouseup", "1")
            case Hotkey(keys=keys):
                self._keys("+".join(KEYSYMS[k] for k in keys))
            case Type(content=content):
                self._type(content)
            case Scroll(x=x, y=y, direction=direction):
                move = ["mousemove", x, y] if x is not None and y is not None else []
                self._xdotool(*move, "click", "--repeat", str(SCROLL_CLICKS), "--delay", "20",
                              SCROLL_BUTTONS[direction])
            case Wait():
                time.sleep(self.wait_s)
            case Finished() | CallUser():
                pass

    def _type(self, text: str) -> None:
        for segment in _SEGMENTS.findall(text):
            if segment == "\n":
                self._keys("Return")
            elif segment == "\t":
                self._keys("Tab")
            elif segment.isascii():
                self._xdotool("type", "--delay", "2", "--", segment)
            else:
                self._paste(segment)

    def _paste(self, text: str) -> None:
        """Clipboard paste: exact for any Unicode text, unlike synthetic key events."""
        holder = subprocess.Popen(["xclip", "-quiet", "-selection", "clipboard", "-i"],
                                  env=self.env, stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            holder.stdin.write(text.encode())
            holder.stdin.close()
            time.sleep(0.05)  # xclip takes the selection once its input is closed
            self._keys("ctrl+v")
            time.sleep(0.15)  # the app fetches the selection from xclip
        finally:
            holder.kill()
            holder.wait()

    def _keys(self, chord: str) -> None:
        gap = KEY_GAP_S - (time.monotonic() - self._last_key)
        if gap > 0:
            time.sleep(gap)
        self._xdotool("key", "--clearmodifiers", chord)
        self._last_key = time.monotonic()

    def _xdotool(self, *args) -> None:
        result = subprocess.run(["xdotool", *map(str, args)], env=self.env, capture_output=True,
                                text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"xdotool {args[0]} failed: {result.stderr.strip()}")
