"""What the dialogs on a desktop say, read from its accessibility tree (AT-SPI, over the desktop's
session bus with `dbus-send`): the words of a modal error that an app stopped at."""

from __future__ import annotations

import itertools
import re
import subprocess
import time

ACCESSIBLE = "org.a11y.atspi.Accessible"
DIALOG_ROLES = ("alert", "dialog", "file chooser")
MAX_NODES = 50  # accessibles read in one dialog
MAX_TEXT = 400  # characters kept of one dialog's text
STRING = re.compile(r'string "(.*)"\s*\Z', re.DOTALL)  # a reply of one string (it may span lines)
CHILD = re.compile(r'string "([^"]*)"\s+object path "([^"]*)"')


def dialog_texts(env: dict[str, str], budget_s: float = 5.0) -> list[tuple[str, str]]:
    """(name, text: its labels in order) of each dialog or alert that an app on the desktop shows,
    as far as the accessibility bus answers within `budget_s` ([] where there is none)."""
    deadline, texts = time.monotonic() + budget_s, []

    def call(dest: str, path: str, method: str, *args: str, bus: str = "--session") -> str:
        timeout = deadline - time.monotonic()
        reply = subprocess.run(
            ["dbus-send", bus, "--print-reply", f"--reply-timeout={max(int(timeout * 1000), 1)}",
             f"--dest={dest}", path, method, *args],
            env=env, capture_output=True, text=True, errors="replace", timeout=max(timeout, 0.01),
            check=True).stdout
        return reply.partition("\n")[2]  # without the "method return …" line

    def string(reply: str) -> str:
        match = STRING.search(reply)
        return " ".join(match[1].split()) if match else ""

    try:
        address = string(call("org.a11y.Bus", "/org/a11y/bus", "org.a11y.Bus.GetAddress"))
        bus = f"--bus={address}"

        def children(name: str, path: str) -> list[tuple[str, str]]:
            return CHILD.findall(call(name, path, f"{ACCESSIBLE}.GetChildren", bus=bus))

        def role(name: str, path: str) -> str:
            return string(call(name, path, f"{ACCESSIBLE}.GetRoleName", bus=bus))

        def label(name: str, path: str) -> str:
            return string(call(name, path, "org.freedesktop.DBus.Properties.Get",
                               f"string:{ACCESSIBLE}", "string:Name", bus=bus))

        for app in children("org.a11y.atspi.Registry", "/org/a11y/atspi/accessible/root"):
            for window in children(*app):
                if role(*window) not in DIALOG_ROLES:
                    continue
                words, queue = [], children(*window)
                for node in itertools.islice(queue, MAX_NODES):  # breadth first: appended to
                    if role(*node) == "label" and (text := label(*node)):
                        words.append(text)
                    queue += children(*node)
                texts.append((label(*window), " ".join(words)[:MAX_TEXT]))
    except (OSError, subprocess.SubprocessError):
        pass  # no accessibility bus, or it stopped answering: what was read so far
    return texts
