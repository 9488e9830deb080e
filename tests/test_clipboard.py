"""Pasting through the X clipboard on a real Xvfb, with a test client in the app's place: a paste
waits for the app's fetch however late it comes, the text stays on the clipboard as a copy does,
and nobody fetching is an error, not a silent loss."""

from __future__ import annotations

import os
import threading
import time

import pytest
from Xlib import X
from Xlib.display import Display

from cua.desktop.clipboard import Clipboard, PasteError
from cua.desktop.x11 import XStack
from cua.envspec import Screen
from tests.conftest import require_desktop_tools


@pytest.fixture(scope="module")
def display(tmp_path_factory):
    require_desktop_tools()
    home = tmp_path_factory.mktemp("clipboard")
    x = XStack({"PATH": os.environ["PATH"], "HOME": str(home)}, home)
    x.start(Screen())
    try:
        yield x.display
    finally:
        x.stop()


def fetch(display_name: str, target: str = "UTF8_STRING") -> str | None:
    """What an app pasting now gets: the CLIPBOARD converted to `target` (None: nothing)."""
    app = Display(display_name)
    try:
        window = app.screen().root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
        clip, kind, prop = (app.intern_atom(n) for n in ("CLIPBOARD", target, "CUA_TEST"))
        window.convert_selection(clip, kind, prop, X.CurrentTime)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if app.pending_events():
                answer = app.next_event()
                if answer.type == X.SelectionNotify:
                    if answer.property == X.NONE:
                        return None
                    data = window.get_full_property(prop, X.AnyPropertyType).value
                    return data.decode("latin-1" if target == "STRING" else "utf-8")
            time.sleep(0.01)
        raise AssertionError("no SelectionNotify within 5 s")
    finally:
        app.close()


def owner(display_name: str) -> int:
    app = Display(display_name)
    try:
        found = app.get_selection_owner(app.intern_atom("CLIPBOARD"))
        return found if isinstance(found, int) else found.id  # X.NONE, or a window
    finally:
        app.close()


def test_a_paste_waits_for_a_late_fetch_and_the_text_stays_on_the_clipboard(display):
    clipboard = Clipboard(display)
    got: list[str | None] = []
    apps: list[threading.Thread] = []

    def slow_app():  # fetches 0.5 s after the paste keys, as a busy desktop's app can
        time.sleep(0.5)
        got.append(fetch(display))

    def press():
        apps.append(threading.Thread(target=slow_app))
        apps[-1].start()

    try:
        start = time.monotonic()
        clipboard.paste("für 3 € — 中文", press)
        assert time.monotonic() - start >= 0.5  # typing goes on only after the fetch
        apps[-1].join()
        assert got == ["für 3 € — 中文"]
        clipboard.paste("ö", press)
        apps[-1].join()
        assert got[-1] == "ö"  # a second paste is the new text, from the same owner
        assert fetch(display) == "ö"  # still there afterwards, as after a copy
        assert fetch(display, "STRING") == "ö"  # Latin-1 for old clients
        assert fetch(display, "image/png") is None  # nothing on offer for other targets
    finally:
        clipboard.close()
    deadline = time.monotonic() + 5
    while owner(display) != X.NONE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert owner(display) == X.NONE  # closed: the clipboard is empty


def test_a_paste_nobody_fetches_is_an_error(display):
    clipboard = Clipboard(display)
    try:
        with pytest.raises(PasteError, match="did not paste 2 characters within 0.3 s"):
            clipboard.paste("中文", lambda: None, timeout_s=0.3)
    finally:
        clipboard.close()


def test_a_copy_elsewhere_takes_the_clipboard_and_the_next_paste_takes_it_back(display):
    clipboard = Clipboard(display)
    other = Display(display)
    try:
        clipboard.paste("ü", lambda: threading.Thread(target=fetch, args=(display,)).start())
        window = other.screen().root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
        window.set_selection_owner(other.intern_atom("CLIPBOARD"), X.CurrentTime)
        other.sync()  # an app copied something
        assert owner(display) == window.id
        clipboard.paste("é", lambda: threading.Thread(target=fetch, args=(display,)).start())
        assert owner(display) != window.id
        assert fetch(display) == "é"
    finally:
        clipboard.close()
        other.close()


def test_a_clipboard_whose_x_server_is_gone_says_so(tmp_path):
    require_desktop_tools()
    x = XStack({"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, tmp_path)
    x.start(Screen())
    clipboard = Clipboard(x.display)
    clipboard.paste("ü", lambda: threading.Thread(target=fetch, args=(x.display,)).start())
    x.stop()
    deadline = time.monotonic() + 5
    while clipboard.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not clipboard.alive  # its thread saw the connection close
    with pytest.raises(PasteError, match="X connection is gone"):
        clipboard.paste("é", lambda: None)
    clipboard.close()  # a no-op now, and safe
