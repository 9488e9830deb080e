"""Canonical desktop action space in absolute screen pixels, with the UI-TARS call grammar.

Pure definitions only: pydantic models, key names, a parser for UI-TARS calls such as
``click(start_box='(640,300)')`` and their inverse :func:`to_call`.
"""

from __future__ import annotations

import ast
import math
import re
import string
import warnings
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

MAX_TYPE_CHARS = 10_000  # one `type` action: about 3 s of typing, longer text would hold the desktop


class ActionError(ValueError):
    """An action string or object is malformed or cannot be executed."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Click(_Model):
    """Left click at a point."""

    type: Literal["click"] = "click"
    x: int
    y: int


class LeftDouble(_Model):
    """Left double click at a point."""

    type: Literal["left_double"] = "left_double"
    x: int
    y: int


class RightSingle(_Model):
    """Right click at a point."""

    type: Literal["right_single"] = "right_single"
    x: int
    y: int


class Drag(_Model):
    """Press the left button at (x1, y1), move to (x2, y2), release."""

    type: Literal["drag"] = "drag"
    x1: int
    y1: int
    x2: int
    y2: int


class Hotkey(_Model):
    """Press keys together (canonical names, see :data:`KEYSYMS`)."""

    type: Literal["hotkey"] = "hotkey"
    keys: list[str]


class Type(_Model):
    """Type text literally; ``\\n`` submits."""

    type: Literal["type"] = "type"
    content: str


class Scroll(_Model):
    """Scroll in a direction, at a point or wherever the pointer is."""

    type: Literal["scroll"] = "scroll"
    x: int | None = None
    y: int | None = None
    direction: Literal["up", "down", "left", "right"]

    @model_validator(mode="after")
    def _both_or_neither(self) -> Scroll:
        if (self.x is None) != (self.y is None):
            raise ValueError("scroll needs both x and y, or neither")
        return self


class Wait(_Model):
    """Wait a moment and look again."""

    type: Literal["wait"] = "wait"


class Finished(_Model):
    """The task is done; ``content`` is an optional answer."""

    type: Literal["finished"] = "finished"
    content: str = ""


class CallUser(_Model):
    """Give up and ask the user for help."""

    type: Literal["call_user"] = "call_user"


Action = Annotated[
    Union[Click, LeftDouble, RightSingle, Drag, Hotkey, Type, Scroll, Wait, Finished, CallUser],
    Field(discriminator="type"),
]
ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action])

_PUNCTUATION = dict(zip(string.punctuation, (
    "exclam quotedbl numbersign dollar percent ampersand apostrophe parenleft parenright "
    "asterisk plus comma minus period slash colon semicolon less equal greater question at "
    "bracketleft backslash bracketright asciicircum underscore grave braceleft bar braceright "
    "asciitilde"
).split(), strict=True))

KEYSYMS: dict[str, str] = {
    "ctrl": "Control_L", "shift": "Shift_L", "alt": "Alt_L", "super": "Super_L",
    "enter": "Return", "esc": "Escape", "tab": "Tab", "backspace": "BackSpace",
    "delete": "Delete", "insert": "Insert", "home": "Home", "end": "End",
    "pageup": "Prior", "pagedown": "Next", "up": "Up", "down": "Down", "left": "Left",
    "right": "Right", "space": "space", "capslock": "Caps_Lock", "menu": "Menu",
    "printscreen": "Print",
    **{f"f{i}": f"F{i}" for i in range(1, 13)},
    **{c: c for c in string.ascii_lowercase + string.digits},
    **_PUNCTUATION,
}

_ALIASES = {
    "control": "ctrl", "ctl": "ctrl", "return": "enter", "escape": "esc",
    "arrowleft": "left", "arrowright": "right", "arrowup": "up", "arrowdown": "down",
    "del": "delete", "pgup": "pageup", "page_up": "pageup", "pgdn": "pagedown",
    "page_down": "pagedown", "cmd": "super", "win": "super", "meta": "super",
    "command": "super", "option": "alt", "spacebar": "space",
}


def normalize_key(name: str) -> str:
    """Return the canonical name of a key (case-insensitive, aliases resolved)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in KEYSYMS:
        raise ActionError(f"unknown key {name!r}")
    return key


_CLICKS = {"click": Click, "left_double": LeftDouble, "right_single": RightSingle}
_START = ("start_box", "point", "start_point")
_END = ("end_box", "end_point")
_POINT_TOKENS = re.compile(r"<\|box_start\|>|<\|box_end\|>|</?point>|</?bbox>")
_NUMBER = re.compile(r"[0-9]{1,7}(?:\.[0-9]+)?")
_CALL = re.compile(r"\s*([A-Za-z_]\w*)\s*\(\s*([A-Za-z_]\w*)\s*=\s*(['\"])(.*)\3\s*\)\s*", re.S)
_CALL_START = re.compile(r"\n(?=\s*[A-Za-z_]\w*\s*\()")


def _short(text: str) -> str:
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _point(value: str) -> tuple[int, int]:
    """Parse '(x,y)', '[x, y]', '<point>x y</point>' or a 4-number box (its centre), rounding half up."""
    inner = _POINT_TOKENS.sub("", value).strip()
    if inner[:1] + inner[-1:] in ("()", "[]"):
        inner = inner[1:-1]
    parts = re.split(r"\s*,\s*|\s+", inner.strip())
    if len(parts) not in (2, 4) or not all(_NUMBER.fullmatch(p) for p in parts):
        raise ActionError(f"invalid point {_short(value)}: expected (x,y) or (x1,y1,x2,y2) "
                          "with non-negative numbers")
    nums = [float(p) for p in parts]
    if len(nums) == 4:
        nums = [(nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2]
    return math.floor(nums[0] + 0.5), math.floor(nums[1] + 0.5)


def _keys(value: str) -> list[str]:
    """Split 'ctrl s' or 'ctrl+s' into normalized key names; a lone or doubled '+' is the plus key."""
    words = [k for w in value.split() for k in re.findall(r"[^+]+|(?<=\+)\+$", w) or [w]]
    if not words:
        raise ActionError("hotkey needs at least one key")
    return [normalize_key(w) for w in words]


def _build(name: str, kwargs: dict[str, str]) -> Action:
    """Turn a function name and its string arguments into an Action."""

    def take(*names: str, required: bool = True) -> str | None:
        given = [n for n in names if n in kwargs]
        if len(given) > 1:
            raise ActionError(f"{name} got both {given[0]} and {given[1]}")
        if not given and required:
            raise ActionError(f"{name} needs argument {names[0]}")
        return kwargs.pop(given[0]) if given else None

    if name in _CLICKS:
        x, y = _point(take(*_START))
        action = _CLICKS[name](x=x, y=y)
    elif name == "drag":
        (x1, y1), (x2, y2) = _point(take(*_START)), _point(take(*_END))
        action = Drag(x1=x1, y1=y1, x2=x2, y2=y2)
    elif name == "hotkey":
        action = Hotkey(keys=_keys(take("key")))
    elif name in ("press", "keydown"):
        keys = _keys(take("key"))
        if len(keys) != 1:
            raise ActionError(f"{name} takes a single key, got {len(keys)}")
        action = Hotkey(keys=keys)
    elif name == "type":
        action = Type(content=take("content"))
    elif name == "scroll":
        start = take(*_START, required=False)
        x, y = _point(start) if start is not None else (None, None)
        direction = take("direction").strip().lower()
        if direction not in ("up", "down", "left", "right"):
            raise ActionError(f"invalid scroll direction {_short(direction)}")
        action = Scroll(x=x, y=y, direction=direction)
    elif name == "finished":
        action = Finished(content=take("content", required=False) or "")
    elif name == "wait":
        action = Wait()
    elif name == "call_user":
        action = CallUser()
    else:
        raise ActionError(f"unknown action {_short(name)}")
    if kwargs:
        raise ActionError(f"unexpected argument {next(iter(kwargs))!r} for {name}")
    return action


def _split_call(text: str) -> tuple[str, dict[str, str]]:
    """Read name and string keyword arguments via the AST; fall back to a lenient regex."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes like '\d' stay literal
            tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _split_lenient(text)
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ActionError(f"expected a call like click(start_box='(x,y)'), got {_short(text)}")
    if call.args:
        raise ActionError(f"{call.func.id} takes keyword arguments only")
    kwargs: dict[str, str] = {}
    for kw in call.keywords:
        if kw.arg is None or kw.arg in kwargs:
            raise ActionError(f"{call.func.id} has **kwargs or a repeated argument")
        if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)):
            raise ActionError(f"argument {kw.arg} of {call.func.id} must be a string literal")
        kwargs[kw.arg] = kw.value.value
    return call.func.id, kwargs


def _split_lenient(text: str) -> tuple[str, dict[str, str]]:
    """Handle one argument whose value has unescaped quotes, e.g. type(content='it's')."""
    match = _CALL.fullmatch(text)
    if match is None:
        raise ActionError(f"cannot parse action {_short(text)}")
    name, arg, quote, body = match.groups()
    escape = {"'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r"}
    body = re.sub(r"\\.|['\"\n\r]", lambda m: escape.get(m[0], m[0]), body, flags=re.S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(quote + body + quote)
    except (SyntaxError, ValueError):
        raise ActionError(f"cannot decode string in {_short(text)}") from None
    return name, {arg: value}


def parse_call(text: str) -> Action:
    """Parse one UI-TARS call with absolute pixel coordinates into an Action."""
    if not isinstance(text, str):
        raise ActionError(f"expected a string, got {type(text).__name__}")
    if not text.strip():
        raise ActionError("empty action")
    return _build(*_split_call(text.strip()))


def parse_calls(text: str) -> list[Action]:
    """Parse several calls separated by newlines or blank lines."""
    if not isinstance(text, str):
        raise ActionError(f"expected a string, got {type(text).__name__}")
    chunks = [c.strip() for c in _CALL_START.split(text) if c.strip()]
    if not chunks:
        raise ActionError("no actions")
    return [parse_call(c) for c in chunks]


def _quote(text: str) -> str:
    """Single-quoted Python literal that ast decodes back to ``text``."""
    out = []
    for c in text:
        if c in "\\'":
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        else:
            out.append(repr(c)[1:-1])
    return "'" + "".join(out) + "'"


def to_call(action: Action, box_tokens: bool = False) -> str:
    """Render an Action as a UI-TARS call; the inverse of :func:`parse_call`."""

    def box(x: int, y: int) -> str:
        point = f"({x},{y})"
        return _quote(f"<|box_start|>{point}<|box_end|>" if box_tokens else point)

    match action:
        case Click() | LeftDouble() | RightSingle():
            return f"{action.type}(start_box={box(action.x, action.y)})"
        case Drag():
            return (f"drag(start_box={box(action.x1, action.y1)}, "
                    f"end_box={box(action.x2, action.y2)})")
        case Hotkey():
            return f"hotkey(key={_quote(' '.join(action.keys))})"
        case Type():
            return f"type(content={_quote(action.content)})"
        case Scroll(x=None):
            return f"scroll(direction={_quote(action.direction)})"
        case Scroll():
            return f"scroll(start_box={box(action.x, action.y)}, direction={_quote(action.direction)})"
        case Finished(content=""):
            return "finished()"
        case Finished():
            return f"finished(content={_quote(action.content)})"
        case Wait() | CallUser():
            return f"{action.type}()"
    raise ActionError(f"not an action: {type(action).__name__}")


def validate(action: Action, width: int, height: int) -> Action:
    """Check an action against a width x height screen; return it with keys normalized."""
    match action:
        case Click() | LeftDouble() | RightSingle() | Scroll(x=int()):
            points = [(action.x, action.y)]
        case Drag():
            points = [(action.x1, action.y1), (action.x2, action.y2)]
        case Hotkey() | Type() | Scroll() | Wait() | Finished() | CallUser():
            points = []
        case _:
            raise ActionError(f"not an action: {type(action).__name__}")
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise ActionError(f"point ({x},{y}) is outside the {width}x{height} screen")
    if isinstance(action, Type) and len(action.content) > MAX_TYPE_CHARS:
        raise ActionError(f"type content of {len(action.content)} characters is over the "
                          f"{MAX_TYPE_CHARS}-character limit")
    if isinstance(action, Hotkey):
        if not action.keys:
            raise ActionError("hotkey needs at least one key")
        return action.model_copy(update={"keys": [normalize_key(k) for k in action.keys]})
    return action
