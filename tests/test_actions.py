"""Tests for the canonical action space and the UI-TARS call grammar."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cua.actions import (
    ACTIONS,
    KEYSYMS,
    ActionError,
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
    normalize_key,
    parse_call,
    parse_calls,
    to_call,
    validate,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("click(start_box='(640,300)')", Click(x=640, y=300)),
        ("click(start_box='<|box_start|>(640,300)<|box_end|>')", Click(x=640, y=300)),
        ("click(start_box='(600,280,680,320)')", Click(x=640, y=300)),
        ("click(start_box='<|box_start|>(1,1,2,2)<|box_end|>')", Click(x=2, y=2)),
        ("click(start_box='[640, 300]')", Click(x=640, y=300)),
        ("click(start_box='[600, 280, 681, 321]')", Click(x=641, y=301)),
        ("click(point='<point>640 300</point>')", Click(x=640, y=300)),
        ("click(start_point='<point>640 300</point>')", Click(x=640, y=300)),
        ("  click( start_box = \"(640, 300)\" )  ", Click(x=640, y=300)),
        ("left_double(start_box='(5,6)')", LeftDouble(x=5, y=6)),
        ("left_double(point='<point>5 6</point>')", LeftDouble(x=5, y=6)),
        ("right_single(start_box='<|box_start|>(7,8)<|box_end|>')", RightSingle(x=7, y=8)),
        (
            "drag(start_box='<|box_start|>(10,20)<|box_end|>', end_box='<|box_start|>(30,40)<|box_end|>')",
            Drag(x1=10, y1=20, x2=30, y2=40),
        ),
        ("drag(start_box='(0,0,20,40)', end_box='[30, 40]')", Drag(x1=10, y1=20, x2=30, y2=40)),
        (
            "drag(start_point='<point>10 20</point>', end_point='<point>30 40</point>')",
            Drag(x1=10, y1=20, x2=30, y2=40),
        ),
        ("hotkey(key='ctrl s')", Hotkey(keys=["ctrl", "s"])),
        ("hotkey(key='ctrl+s')", Hotkey(keys=["ctrl", "s"])),
        ("hotkey(key='Ctrl+Shift+T')", Hotkey(keys=["ctrl", "shift", "t"])),
        ("hotkey(key='control alt Delete')", Hotkey(keys=["ctrl", "alt", "delete"])),
        ("hotkey(key='ctrl++')", Hotkey(keys=["ctrl", "+"])),
        ("hotkey(key='ctrl +')", Hotkey(keys=["ctrl", "+"])),
        ("hotkey(key='arrowdown')", Hotkey(keys=["down"])),
        ("press(key='enter')", Hotkey(keys=["enter"])),
        ("press(key='Return')", Hotkey(keys=["enter"])),
        ("keydown(key='esc')", Hotkey(keys=["esc"])),
        ("type(content='hello')", Type(content="hello")),
        ("type(content='42\\n')", Type(content="42\n")),
        ("type(content='a\\tb\\\\c\\'d')", Type(content="a\tb\\c'd")),
        ("type(content='<b>x</b>')", Type(content="<b>x</b>")),
        ("type(content='it's fine')", Type(content="it's fine")),
        ("type(content='it's fine\\n')", Type(content="it's fine\n")),
        ('type(content="say "hi"")', Type(content='say "hi"')),
        ("type(content='中文 ö €')", Type(content="中文 ö €")),
        ("type(content='')", Type(content="")),
        ("scroll(start_box='(10,20)', direction='down')", Scroll(x=10, y=20, direction="down")),
        ("scroll(point='<point>10 20</point>', direction='up')", Scroll(x=10, y=20, direction="up")),
        ("scroll(direction='left')", Scroll(direction="left")),
        ("scroll(start_box='(10,20)', direction='Right')", Scroll(x=10, y=20, direction="right")),
        ("wait()", Wait()),
        ("finished(content='done')", Finished(content="done")),
        ("finished()", Finished()),
        ("call_user()", CallUser()),
    ],
)
def test_parse_call(text, expected):
    assert parse_call(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n ",
        "click",
        "click()",
        "click(start_box='')",
        "click(start_box='(640)')",
        "click(start_box='(1,2,3)')",
        "click(start_box='(a,b)')",
        "click(start_box='(-5,10)')",
        "click(start_box='(1e3,10)')",
        "click(start_box=(640,300))",
        "click(start_box='(640,300)', end_box='(1,2)')",
        "click(start_box='(1,2)', point='<point>1 2</point>')",
        "click('(640,300)')",
        "click(**{'start_box': '(1,2)'})",
        "click(start_box='(1,2)', start_box='(3,4)')",
        "click(start_box=f'(1,2)')",
        "click(start_box=b'(1,2)')",
        "click(start_box='(640,300)'",
        "os.system('ls')",
        "__import__('os').system('ls')",
        "teleport(start_box='(1,2)')",
        "drag(start_box='(1,2)')",
        "hotkey()",
        "hotkey(key='')",
        "hotkey(key='ctrl xyz')",
        "press(key='ctrl s')",
        "type()",
        "type(text='x')",
        "type(content='trailing backslash\\')",
        "scroll(start_box='(1,2)')",
        "scroll(direction='sideways')",
        "wait(seconds='5')",
        "finished(content=42)",
        "1 + 1",
        "Thought: hmm",
        "(" * 500,
        "-" * 100_000 + "1",
        "abc\x00",
    ],
)
def test_parse_call_rejects(text):
    with pytest.raises(ActionError) as info:
        parse_call(text)
    assert str(info.value) and "\n" not in str(info.value)


def test_parse_call_rejects_non_string():
    with pytest.raises(ActionError, match="expected a string"):
        parse_call(None)


def test_error_messages_say_what_is_wrong():
    with pytest.raises(ActionError, match="unknown action 'teleport'"):
        parse_call("teleport()")
    with pytest.raises(ActionError, match="needs argument start_box"):
        parse_call("click()")
    with pytest.raises(ActionError, match="invalid point"):
        parse_call("click(start_box='(-1,2)')")
    with pytest.raises(ActionError, match="unknown key 'xyz'"):
        parse_call("hotkey(key='ctrl xyz')")
    with pytest.raises(ActionError, match="invalid scroll direction"):
        parse_call("scroll(direction='sideways')")
    with pytest.raises(ActionError, match="unexpected argument 'foo' for wait"):
        parse_call("wait(foo='1')")


def test_parse_calls():
    text = (
        "click(start_box='(1,2)')\n\n"
        "type(content='hi\\n')\n"
        "  hotkey(key='ctrl s')  \r\n"
        "finished()\n"
    )
    assert parse_calls(text) == [
        Click(x=1, y=2),
        Type(content="hi\n"),
        Hotkey(keys=["ctrl", "s"]),
        Finished(),
    ]


def test_parse_calls_keeps_raw_newline_inside_content():
    assert parse_calls("type(content='line one\nline two')\nwait()") == [
        Type(content="line one\nline two"),
        Wait(),
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "click(start_box='(1,2)')\nbogus"])
def test_parse_calls_rejects(text):
    with pytest.raises(ActionError):
        parse_calls(text)


def test_to_call_format():
    assert to_call(Click(x=640, y=300)) == "click(start_box='(640,300)')"
    assert (
        to_call(Click(x=640, y=300), box_tokens=True)
        == "click(start_box='<|box_start|>(640,300)<|box_end|>')"
    )
    assert (
        to_call(Drag(x1=1, y1=2, x2=3, y2=4))
        == "drag(start_box='(1,2)', end_box='(3,4)')"
    )
    assert to_call(Hotkey(keys=["ctrl", "s"])) == "hotkey(key='ctrl s')"
    assert to_call(Type(content="42\n")) == "type(content='42\\n')"
    assert to_call(Scroll(direction="up")) == "scroll(direction='up')"
    assert (
        to_call(Scroll(x=1, y=2, direction="down"))
        == "scroll(start_box='(1,2)', direction='down')"
    )
    assert to_call(Wait()) == "wait()"
    assert to_call(Finished()) == "finished()"
    assert to_call(Finished(content="ok")) == "finished(content='ok')"
    assert to_call(CallUser()) == "call_user()"
    with pytest.raises(ActionError, match="not an action"):
        to_call("click")


@pytest.mark.parametrize(
    "content",
    [
        "line\n",
        "a\tb",
        "<html><body>x > y < z</body></html>",
        "it's \"quoted\"",
        "back\\slash \\n literal",
        "ö € 中文 🙂",
        "\r\n\x00\x1b\u2028\x85",
        "",
    ],
)
@pytest.mark.parametrize("box_tokens", [False, True])
def test_type_content_round_trip(content, box_tokens):
    call = to_call(Type(content=content), box_tokens=box_tokens)
    assert "\n" not in call
    assert parse_call(call) == Type(content=content)
    assert parse_call(to_call(Finished(content=content))) == Finished(content=content)


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("Control", "ctrl"), ("CTL", "ctrl"), ("ctrl", "ctrl"), ("Return", "enter"),
        ("escape", "esc"), ("ArrowLeft", "left"), ("arrowright", "right"),
        ("ArrowUp", "up"), ("arrowdown", "down"), ("del", "delete"), ("PgUp", "pageup"),
        ("page_up", "pageup"), ("pgdn", "pagedown"), ("page_down", "pagedown"),
        ("cmd", "super"), ("win", "super"), ("Meta", "super"), ("command", "super"),
        ("option", "alt"), ("spacebar", "space"), ("F5", "f5"), ("A", "a"), (" tab ", "tab"),
        ("+", "+"),
    ],
)
def test_normalize_key(alias, canonical):
    assert normalize_key(alias) == canonical


@pytest.mark.parametrize("name", ["xyz", "", "f13", "ctrl+s", "é"])
def test_normalize_key_rejects(name):
    with pytest.raises(ActionError, match="unknown key"):
        normalize_key(name)


def test_unknown_key_message():
    with pytest.raises(ActionError) as info:
        normalize_key("xyz")
    assert str(info.value) == "unknown key 'xyz'"


def test_keysyms():
    expected = {
        "ctrl": "Control_L", "shift": "Shift_L", "alt": "Alt_L", "super": "Super_L",
        "enter": "Return", "esc": "Escape", "tab": "Tab", "backspace": "BackSpace",
        "delete": "Delete", "pageup": "Prior", "pagedown": "Next", "space": "space",
        "f1": "F1", "f12": "F12", "capslock": "Caps_Lock", "printscreen": "Print",
        "a": "a", "z": "z", "0": "0", "9": "9", "-": "minus", "=": "equal", ",": "comma",
        ".": "period", "/": "slash", ";": "semicolon", "'": "apostrophe",
        "[": "bracketleft", "]": "bracketright", "\\": "backslash", "`": "grave",
        "+": "plus",
    }
    assert {k: KEYSYMS[k] for k in expected} == expected
    assert set(string.punctuation) <= KEYSYMS.keys()
    assert {"insert", "home", "end", "up", "down", "left", "right", "menu"} <= KEYSYMS.keys()
    assert all(normalize_key(k) == k for k in KEYSYMS)


def test_validate_bounds_on_1920x1080():
    assert validate(Click(x=1919, y=1079), 1920, 1080) == Click(x=1919, y=1079)
    assert validate(Click(x=0, y=0), 1920, 1080) == Click(x=0, y=0)
    for bad in [Click(x=1920, y=0), Click(x=0, y=1080), Click(x=-1, y=5)]:
        with pytest.raises(ActionError, match="outside the 1920x1080 screen"):
            validate(bad, 1920, 1080)
    with pytest.raises(ActionError):
        validate(RightSingle(x=5000, y=10), 1920, 1080)
    with pytest.raises(ActionError):
        validate(Drag(x1=0, y1=0, x2=1920, y2=5), 1920, 1080)
    with pytest.raises(ActionError):
        validate(Scroll(x=10, y=1080, direction="down"), 1920, 1080)
    assert validate(Scroll(direction="down"), 1920, 1080) == Scroll(direction="down")
    assert validate(Type(content="x"), 1920, 1080) == Type(content="x")


def test_validate_keys():
    assert validate(Hotkey(keys=["Control", "S"]), 1920, 1080) == Hotkey(keys=["ctrl", "s"])
    with pytest.raises(ActionError, match="at least one key"):
        validate(Hotkey(keys=[]), 1920, 1080)
    with pytest.raises(ActionError, match="unknown key 'hyper'"):
        validate(Hotkey(keys=["ctrl", "hyper"]), 1920, 1080)
    with pytest.raises(ActionError, match="not an action"):
        validate({"type": "click"}, 1920, 1080)


def test_scroll_needs_both_coordinates():
    with pytest.raises(ValidationError):
        Scroll(x=1, direction="up")


def test_json_round_trip():
    actions = [
        Click(x=1, y=2), LeftDouble(x=3, y=4), RightSingle(x=5, y=6),
        Drag(x1=1, y1=2, x2=3, y2=4), Hotkey(keys=["ctrl", "s"]), Type(content="ö\n<x>"),
        Scroll(direction="up"), Scroll(x=1, y=2, direction="left"), Wait(),
        Finished(content="done"), CallUser(),
    ]
    assert ACTIONS.validate_json(ACTIONS.dump_json(actions)) == actions
    dumped = ACTIONS.dump_python(actions)
    assert dumped[0] == {"type": "click", "x": 1, "y": 2}
    assert ACTIONS.validate_python(dumped) == actions
    with pytest.raises(ValidationError):
        ACTIONS.validate_python([{"type": "teleport"}])
    with pytest.raises(ValidationError):
        ACTIONS.validate_python([{"type": "click", "x": 1, "y": 2, "z": 3}])


# --- property tests -------------------------------------------------------------------

coords = st.integers(min_value=0, max_value=100_000)
directions = st.sampled_from(["up", "down", "left", "right"])
actions = st.one_of(
    st.builds(Click, x=coords, y=coords),
    st.builds(LeftDouble, x=coords, y=coords),
    st.builds(RightSingle, x=coords, y=coords),
    st.builds(Drag, x1=coords, y1=coords, x2=coords, y2=coords),
    st.builds(Hotkey, keys=st.lists(st.sampled_from(sorted(KEYSYMS)), min_size=1, max_size=4)),
    st.builds(Type, content=st.text()),
    st.builds(Scroll, direction=directions),
    st.builds(Scroll, x=coords, y=coords, direction=directions),
    st.just(Wait()),
    st.builds(Finished, content=st.text()),
    st.just(CallUser()),
)

names = st.sampled_from(
    ["click", "left_double", "right_single", "drag", "hotkey", "press", "type", "scroll",
     "wait", "finished", "call_user", "bogus"]
)
arg_names = st.sampled_from(
    ["start_box", "end_box", "point", "start_point", "end_point", "key", "content", "direction"]
)
fragments = st.sampled_from(
    ["(", ")", "[", "]", ",", " ", "'", '"', "\\", "\n", "<|box_start|>", "<|box_end|>",
     "<point>", "</point>", "-", ".", "+", "ctrl", "down", "0", "1920", "99999999"]
)
values = st.one_of(st.text(), st.lists(fragments).map("".join))
near_misses = st.builds(
    lambda name, args, quote, close: f"{name}("
    + ", ".join(f"{k}={quote}{v}{quote}" for k, v in args)
    + close,
    names,
    st.lists(st.tuples(arg_names, values), max_size=3),
    st.sampled_from(["'", '"', ""]),
    st.sampled_from([")", "", "))"]),
)
texts = st.one_of(st.text(), near_misses, st.lists(near_misses).map("\n".join))


def _parses_or_action_error(fn, text):
    try:
        result = fn(text)
    except ActionError as e:
        assert str(e)
        return
    result = result if isinstance(result, list) else [result]
    assert result and ACTIONS.validate_python(result) == result


@settings(max_examples=500)
@given(texts)
def test_arbitrary_text_parses_or_raises_action_error(text):
    _parses_or_action_error(parse_call, text)
    _parses_or_action_error(parse_calls, text)


@settings(max_examples=500)
@given(actions, st.booleans())
def test_to_call_round_trip(action, box_tokens):
    call = to_call(action, box_tokens=box_tokens)
    assert parse_call(call) == action
    assert parse_calls(call) == [action]


@given(st.lists(actions, min_size=1, max_size=5), st.sampled_from(["\n", "\n\n"]))
def test_parse_calls_round_trip(batch, sep):
    assert parse_calls(sep.join(to_call(a) for a in batch)) == batch


@given(actions)
def test_validate_accepts_on_large_screen(action):
    assert validate(action, 100_001, 100_001) == action
