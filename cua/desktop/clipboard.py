"""Pasting text through the X clipboard, as OSWorld's agents do (the text is copied, then ctrl+v):
this process owns CLIPBOARD and answers the apps' requests from a thread of its own. A paste
returns once the app has fetched the text, so the typing that follows cannot overtake it, and
the text stays on the clipboard, as a copy does, until the next paste or `close`. The owner
never changes between pastes: LibreOffice drops a paste whose clipboard changes owner while it
inserts the text."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from contextlib import suppress

from Xlib import X, Xatom
from Xlib.display import Display
from Xlib.error import ConnectionClosedError
from Xlib.protocol import event

PASTE_TIMEOUT_S = 3.0
UTF8_TARGETS = ("UTF8_STRING", "text/plain;charset=utf-8", "TEXT")  # TEXT: the owner's choice


class PasteError(RuntimeError):
    """The focused app did not fetch the offered text, or the X server is gone."""


class Clipboard:
    """The CLIPBOARD of one X display, owned by this process from the first paste on."""

    def __init__(self, display_name: str):
        self.display = Display(display_name)
        self.display.set_error_handler(lambda *_: None)  # a requestor's window may be gone
        self.atoms = {name: self.display.intern_atom(name)
                      for name in ("CLIPBOARD", "TARGETS", "STRING", *UTF8_TARGETS)}
        self.owner = self.display.screen().root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
        self.display.flush()
        self.changed = threading.Condition()
        self.text: str | None = None
        self.fetches = 0  # times an app fetched the text
        self.owned = False
        self.alive = True
        self._wake_read, self._wake_write = os.pipe()
        threading.Thread(target=self._serve, daemon=True, name="clipboard").start()

    def paste(self, text: str, press: Callable[[], None],
              timeout_s: float = PASTE_TIMEOUT_S) -> None:
        """Put `text` on the clipboard, call `press` (the paste keys) and wait until an app
        fetched it; PasteError after `timeout_s` without a fetch."""
        with self.changed:
            if not self.alive:
                raise PasteError("the clipboard's X connection is gone")
            self.text, fetches = text, self.fetches
            self._wake()
            self.changed.wait_for(lambda: self.owned or not self.alive, timeout_s)
            if not self.owned:
                raise PasteError("could not take the clipboard" if self.alive
                                 else "the clipboard's X connection is gone")
        press()
        with self.changed:
            self.changed.wait_for(lambda: self.fetches > fetches or not self.alive, timeout_s)
            if self.fetches == fetches:
                raise PasteError(f"the focused window did not paste {len(text)} characters "
                                 f"within {timeout_s:g} s (the app has no ctrl+v paste?)")

    def close(self) -> None:
        """Stop serving; the clipboard is empty again (its owner window goes)."""
        with self.changed:
            if self.alive:
                self.alive = False
                self._wake()

    def _wake(self) -> None:
        """Interrupt the serving thread's wait (call holding `changed`, while `alive`: the
        thread closes the pipe once it has seen `alive` false)."""
        os.write(self._wake_write, b"x")

    def _serve(self) -> None:
        """Answer requests, and take the clipboard when a paste asks for it, until `close` or
        until the X server is gone."""
        try:
            while self.alive:
                ready, _, _ = select.select([self.display, self._wake_read], [], [])
                if self._wake_read in ready:
                    os.read(self._wake_read, 64)
                    self._own()
                while self.alive and self.display.pending_events():
                    self._handle(self.display.next_event())
        except (ConnectionClosedError, OSError):
            pass
        finally:
            with self.changed:
                self.alive = False
                self.changed.notify_all()
            with suppress(ConnectionClosedError, OSError):  # a server already gone
                self.display.close()
            os.close(self._wake_read)
            os.close(self._wake_write)

    def _own(self) -> None:
        with self.changed:
            if self.alive and not self.owned and self.text is not None:
                self.owner.set_selection_owner(self.atoms["CLIPBOARD"], X.CurrentTime)
                owner = self.display.get_selection_owner(self.atoms["CLIPBOARD"])
                self.owned = owner == self.owner
            self.changed.notify_all()

    def _handle(self, request) -> None:
        if request.type == X.SelectionClear:  # another client copied something
            with self.changed:
                self.owned = False
        elif request.type == X.SelectionRequest:
            with self.changed:
                text = self.text
            if _answer(self.display, request, self.atoms, text or ""):
                with self.changed:
                    self.fetches += 1
                    self.changed.notify_all()


def _answer(display: Display, request, atoms: dict[str, int], text: str) -> bool:
    """Answer one SelectionRequest (ICCCM): the targets on offer, or the text in the target's
    encoding; True when it fetched the text."""
    names = {atom: name for name, atom in atoms.items()}
    target, prop = request.target, request.property or request.target  # None: an old client
    fetched = False
    if names.get(target) == "TARGETS":
        offered = [atoms[n] for n in ("TARGETS", *UTF8_TARGETS, "STRING")]
        request.requestor.change_property(prop, Xatom.ATOM, 32, offered)
    elif names.get(target) == "STRING":
        request.requestor.change_property(prop, target, 8, text.encode("latin-1", "replace"))
        fetched = True
    elif names.get(target) in UTF8_TARGETS:
        kind = atoms["UTF8_STRING"] if names[target] == "TEXT" else target
        request.requestor.change_property(prop, kind, 8, text.encode())
        fetched = True
    else:
        prop = X.NONE  # a target not on offer
    request.requestor.send_event(event.SelectionNotify(
        time=request.time, requestor=request.requestor, selection=request.selection,
        target=target, property=prop))
    display.sync()  # the X server has passed the answer on: the app is woken by now
    return fetched
