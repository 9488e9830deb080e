"""A desktop's accessibility tree, read over AT-SPI's D-Bus interfaces with jeepney (calls are
pipelined: a few round trips per tree level, not per node) and written as the XML that OSWorld's
VM server returns from `/accessibility`; and, from the same tree, the words of the dialogs an app
stopped at."""

from __future__ import annotations

import functools
import re
import subprocess
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call
from jeepney.io.blocking import DBusConnection, open_dbus_connection
from lxml import etree

ATSPI = "org.a11y.atspi"
ACCESSIBLE = f"{ATSPI}.Accessible"
PROPERTIES = "org.freedesktop.DBus.Properties"
REGISTRY = (f"{ATSPI}.Registry", "/org/a11y/atspi/accessible/root")
# OSWorld's namespaces for an Ubuntu VM's tree (its metrics' selectors name them).
NS = {prefix: f"https://accessibility.ubuntu.example.org/ns/{name}" for prefix, name in [
    ("st", "state"), ("attr", "attributes"), ("cp", "component"), ("doc", "document"),
    ("docattr", "document/attributes"), ("txt", "text"), ("val", "value"), ("act", "action")]}
# AT-SPI's StateType, in its order (bit i of GetState's two words).
STATES = (
    "invalid active armed busy checked collapsed defunct editable enabled expandable expanded "
    "focusable focused has_tooltip horizontal iconified modal multi_line multiselectable opaque "
    "pressed resizable selectable selected sensitive showing single_line stale transient vertical "
    "visible manages_descendants indeterminate required truncated animated invalid_entry "
    "supports_autocompletion selectable_text is_default visited checkable has_popup read_only"
).split()
SHOWING = STATES.index("showing")
MAX_DEPTH, MAX_WIDTH = 50, 1024  # as OSWorld's server: deeper nodes and further children are cut
CALC_SCAN = 500  # OSWorld's server: columns (and rows) of a sheet searched for its showing cells
CALC_ROWS = 1_048_576
BATCH = 256  # calls in flight at once
CHUNK = 64  # sheet cells asked for at once while searching for the showing ones
VALUES = {"value": "CurrentValue", "min": "MinimumValue", "max": "MaximumValue",
          "step": "MinimumIncrement"}  # Value's properties, by OSWorld's names for them
DIALOG_ROLES = ("alert", "dialog", "file-chooser")
MAX_TEXT = 400  # characters kept of one dialog's text
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class NoBus(OSError):
    """The desktop's accessibility bus cannot be reached."""


@dataclass(frozen=True)
class Ref:
    """An accessible object: the bus name of its app and its object path."""

    bus: str
    path: str


@dataclass(frozen=True)
class Call:
    ref: Ref
    interface: str
    method: str
    signature: str = ""
    args: tuple = ()


class Bus:
    """A desktop's accessibility bus; `calls` sends a batch before reading its replies. Past the
    deadline, and for an object that answers with an error, a call's result is None."""

    def __init__(self, env: dict[str, str], budget_s: float):
        self.deadline = time.monotonic() + budget_s
        if "DBUS_SESSION_BUS_ADDRESS" not in env:
            raise NoBus("the desktop has no session bus")
        with open_dbus_connection(env["DBUS_SESSION_BUS_ADDRESS"]) as session:
            reply = session.send_and_get_reply(new_method_call(
                DBusAddress("/org/a11y/bus", "org.a11y.Bus", "org.a11y.Bus"), "GetAddress"),
                timeout=budget_s)
        if reply.header.message_type != MessageType.method_return:
            raise NoBus(f"the desktop has no accessibility bus: {reply.body}")
        self.conn: DBusConnection = open_dbus_connection(reply.body[0])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def call(self, call: Call) -> Any:
        return self.calls([call])[0]

    def calls(self, calls: list[Call]) -> list[Any]:
        results: list[Any] = [None] * len(calls)
        for start in range(0, len(calls), BATCH):
            pending = {}
            for i, c in enumerate(calls[start:start + BATCH], start):
                serial = next(self.conn.outgoing_serial)
                address = DBusAddress(c.ref.path, c.ref.bus, c.interface)
                self.conn.send(new_method_call(address, c.method, c.signature or None, c.args),
                               serial=serial)
                pending[serial] = i
            while pending:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    return results
                try:
                    message = self.conn.receive(timeout=remaining)
                except TimeoutError:
                    return results
                i = pending.pop(message.header.fields.get(HeaderFields.reply_serial), None)
                if i is not None and message.header.message_type == MessageType.method_return:
                    body = message.body
                    results[i] = body[0] if len(body) == 1 else body
        return results


@dataclass
class _Node:
    ref: Ref
    parent: etree._Element | None
    flag: str | None = None
    role: str = ""
    states: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    properties: dict = field(default_factory=dict)


def tree_xml(env: dict[str, str], app_names: dict[str, str] | None = None,
             budget_s: float = 60.0) -> str:
    """The whole tree as OSWorld's server writes it: a `desktop-frame` with one element per app,
    each node an element named after its role with its name, states, attributes, extents, value
    and actions as namespaced attributes and its text as text. `app_names` renames applications
    (an app that stands in for another). Whatever answers within `budget_s`."""
    return etree.tostring(read_tree(env, app_names or {}, budget_s), encoding="unicode")


def read_tree(env: dict[str, str], app_names: dict[str, str], budget_s: float,
              only: Collection[str] | None = None) -> etree._Element:
    """The tree's root; `only`: the names of the applications to read (default: all)."""
    root = etree.Element("desktop-frame", nsmap=NS)
    with Bus(env, budget_s) as bus:
        apps = bus.call(Call(Ref(*REGISTRY), ACCESSIBLE, "GetChildren")) or []
        level = [_Node(Ref(*app), root) for app in apps]
        for depth in range(1, MAX_DEPTH + 1):
            level = _read_level(bus, level, depth, app_names, only)
            if not level:
                break
    return root


def _read_level(bus: Bus, level: list[_Node], depth: int, app_names: dict[str, str],
                only: Collection[str] | None) -> list[_Node]:
    """Describe every node of one level, attach its element and return the next level."""
    # Each property on its own: Properties.GetAll crashes Qt apps (VLC) on Accessible, and
    # Chromium on Value.
    first = bus.calls([c for n in level for c in (
        Call(n.ref, ACCESSIBLE, "GetRoleName"), Call(n.ref, ACCESSIBLE, "GetState"),
        Call(n.ref, ACCESSIBLE, "GetAttributes"), Call(n.ref, ACCESSIBLE, "GetInterfaces"),
        Call(n.ref, PROPERTIES, "Get", "ss", (ACCESSIBLE, "Name")),
        Call(n.ref, PROPERTIES, "Get", "ss", (ACCESSIBLE, "ChildCount")))])
    alive = []
    for i, node in enumerate(level):
        role, state, attributes, interfaces, name, count = first[6 * i:6 * i + 6]
        if name is None:
            continue  # gone, or not answering
        node.role, node.interfaces = (role or "").strip(), interfaces or []
        words = state or [0, 0]
        node.states = [s for b, s in enumerate(STATES) if words[b // 32] >> (b % 32) & 1]
        node.properties = {"Name": name[1], "ChildCount": count[1] if count else 0,
                           "attributes": attributes or {}}
        if node.role == "application" and node.properties.get("Name") in app_names:
            node.properties["Name"] = app_names[node.properties["Name"]]
        if depth == 1 and only is not None and node.properties.get("Name") not in only:
            continue
        if not node.flag and node.role == "document spreadsheet":
            node.flag = "calc"
        alive.append(node)

    second_calls, slots = [], []
    for node in alive:
        wanted = {}
        if "visible" in node.states and "showing" in node.states \
                and f"{ATSPI}.Component" in node.interfaces:
            wanted["extents"] = Call(node.ref, f"{ATSPI}.Component", "GetExtents", "u", (0,))
        if f"{ATSPI}.Text" in node.interfaces:
            wanted["text"] = Call(node.ref, f"{ATSPI}.Text", "GetText", "ii", (0, -1))
        if f"{ATSPI}.Value" in node.interfaces:
            wanted |= {key: Call(node.ref, PROPERTIES, "Get", "ss", (f"{ATSPI}.Value", prop))
                       for key, prop in VALUES.items()}
        if f"{ATSPI}.Action" in node.interfaces:
            wanted["actions"] = Call(node.ref, f"{ATSPI}.Action", "GetActions")
        count = node.properties.get("ChildCount", 0)
        if depth < MAX_DEPTH and not _is_sheet(node) and 0 < count <= MAX_WIDTH:
            wanted["children"] = Call(node.ref, ACCESSIBLE, "GetChildren")
        elif depth < MAX_DEPTH and not _is_sheet(node) and count > MAX_WIDTH:
            for index in range(MAX_WIDTH):
                wanted[index] = Call(node.ref, ACCESSIBLE, "GetChildAtIndex", "i", (index,))
        slots.append(list(wanted))
        second_calls += wanted.values()
    second = iter(bus.calls(second_calls))

    next_level = []
    for node, keys in zip(alive, slots):
        got = {key: next(second) for key in keys}
        element = _element(node, got)
        node.parent.append(element)
        if _is_sheet(node) and depth < MAX_DEPTH:
            children = _showing_cells(bus, node.ref)
        else:
            children = got.get("children") or [got[k] for k in keys if isinstance(k, int)]
        next_level += [_Node(Ref(*c), element, node.flag) for c in children if c]
    return next_level


def _is_sheet(node: _Node) -> bool:
    return node.flag == "calc" and node.role == "table"


def _element(node: _Node, got: dict) -> etree._Element:
    """One node's element, its attributes in the order OSWorld's server writes them."""
    st, attr, cp, val, act = (f"{{{NS[p]}}}" for p in ("st", "attr", "cp", "val", "act"))
    attrib = {"name": node.properties.get("Name", "")}
    attrib |= {f"{st}{s}": "true" for s in node.states}
    attrib |= {f"{attr}{k}": v for k, v in node.properties["attributes"].items() if k}
    if extents := got.get("extents"):
        attrib |= {f"{cp}screencoord": str(tuple(extents[:2])),
                   f"{cp}size": str(tuple(extents[2:]))}
    if f"{ATSPI}.Image" in node.interfaces:
        attrib["image"] = "true"
    if f"{ATSPI}.Selection" in node.interfaces:
        attrib["selection"] = "true"
    attrib |= {f"{val}{key}": str(got[key][1]) for key in VALUES if got.get(key)}
    for name, description, keys in got.get("actions") or []:
        name = name.replace(" ", "-")
        attrib |= {f"{act}{name}_desc": description, f"{act}{name}_kb": keys}
    tag = (node.role or "unknown").replace(" ", "-")
    element = etree.Element(tag, {k: NOT_XML.sub("", str(v)) for k, v in attrib.items()},
                            nsmap=NS)
    text = (got.get("text") or "").replace("\ufffc", "").replace("\ufffd", "")
    if text:
        element.text = NOT_XML.sub("", text)
    return element


def _showing_cells(bus: Bus, table: Ref) -> list[tuple[str, str]]:
    """The cells of a sheet that are on screen, found as OSWorld's server finds them: row by row
    from the first, each from the column of the first showing cell, until a row shows none."""
    columns = 1024 if libreoffice_version() < (7, 4) else 16384
    cells, column_base, first_showing = [], None, False
    for row in range(CALC_ROWS):
        column = column_base or 0
        for column, cell, showing in _row_cells(bus, table, row * columns, column, columns):
            if showing:
                cells.append(cell)
                if not first_showing:
                    column_base, first_showing = column, True
            elif first_showing or column >= CALC_SCAN:
                break
        if first_showing and column == column_base or not first_showing and row >= CALC_SCAN:
            break
        if time.monotonic() > bus.deadline:
            break
    return cells


def _row_cells(bus: Bus, table: Ref, base: int, start: int, columns: int
               ) -> Iterator[tuple[int, Any, bool]]:
    """(column, cell, showing) from column `start` on, asked for `CHUNK` at a time."""
    for chunk in range(start, columns, CHUNK):
        indices = range(chunk, min(chunk + CHUNK, columns))
        cells = bus.calls([Call(table, ACCESSIBLE, "GetChildAtIndex", "i", (base + i,))
                           for i in indices])
        states = iter(bus.calls([Call(Ref(*c), ACCESSIBLE, "GetState") for c in cells if c]))
        for column, cell in zip(indices, cells):
            state = next(states) if cell else None
            yield column, cell, bool(state and state[0] >> SHOWING & 1)


@functools.cache
def libreoffice_version() -> tuple[int, ...]:
    """LibreOffice's version (its sheets have 16384 columns from 7.4 on, 1024 before)."""
    try:
        out = subprocess.run(["libreoffice", "--version"], capture_output=True, text=True,
                             timeout=60).stdout.split()
        return tuple(int(part) for part in out[1].split("."))
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return (7, 4)


def dialog_texts(env: dict[str, str], budget_s: float = 5.0) -> list[tuple[str, str]]:
    """(name, text: its labels in order) of each dialog or alert that an app on the desktop shows,
    as far as the accessibility bus answers within `budget_s` ([] where there is none)."""
    try:
        root = read_tree(env, {}, budget_s)
    except OSError:  # no accessibility bus, or it stopped answering (TimeoutError)
        return []
    return [(window.get("name", ""), " ".join(
                " ".join(label.get("name", "").split()) for label in window.iter("label")
                if label.get("name", "").strip())[:MAX_TEXT])
            for app in root for window in app if window.tag in DIALOG_ROLES]
