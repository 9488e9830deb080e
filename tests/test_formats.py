"""Agent formats: the UI-TARS request layout, prompt, resize rule, parser and unparser."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from cua.actions import (
    KEYSYMS,
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
    to_call,
)
from cua.formats import FORMATS, Context, Parsed, ParseError, Step, get_format, uitars
from cua.formats.uitars import UITars15, smart_resize

CORPUS = Path(__file__).parent / "data" / "uitars_responses"
SCREEN = (1920, 1080)

PROMPT_15 = (
    "You are a GUI agent. You are given a task and your action history, with screenshots. "
    "You need to perform the next action to complete the task. \n"
    """
## Output Format
```
Thought: ...
Action: ...
```

## Action Space

click(start_box='<|box_start|>(x1,y1)<|box_end|>')
left_double(start_box='<|box_start|>(x1,y1)<|box_end|>')
right_single(start_box='<|box_start|>(x1,y1)<|box_end|>')
drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')
hotkey(key='')
type(content='') #If you want to submit your input, use "\\n" at the end of `content`.
scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left')
wait() #Sleep for 5s and take a screenshot to check for any changes.
finished(content='xxx') # Use escape characters \\', \\", and \\n in content part to ensure \
we can parse the content in normal python string format.


## Note
- Use English in `Thought` part.
- Write a small plan and finally summarize your next action (with its target element) in one \
sentence in `Thought` part.

## User Instruction
Put the sum of Units in D26.
"""
)


def png(color: tuple[int, int, int], size: tuple[int, int] = (320, 180)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def color(step: int) -> tuple[int, int, int]:
    return (10 * step + 5, 100, 200)


def decode(block: dict) -> Image.Image:
    url = block["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def layout(messages: list[dict]) -> list[str]:
    """One token per message: role plus what it holds (an image names its step by colour)."""
    steps = {color(i): str(i) for i in range(20)} | {(255, 255, 255): "now"}
    out = []
    for message in messages:
        assert isinstance(message["content"], list) and len(message["content"]) == 1
        block = message["content"][0]
        if block["type"] == "image_url":
            out.append(f"{message['role']}:image:{steps[decode(block).getpixel((5, 5))]}")
        else:
            out.append(f"{message['role']}:text")
    return out


def context(t: int, screen: tuple[int, int] = (320, 180), **kw) -> Context:
    history = [Step(screenshot=png(color(i)), response=f"Thought: step {i}\n"
                    f"Action: click(start_box='({i},{i})')") for i in range(t)]
    return Context(instruction="Put the sum of Units in D26.", history=history,
                   screenshot=png((255, 255, 255)), screen=screen, **kw)


# --- resize rule and prompt -------------------------------------------------------------------

def test_smart_resize_matches_qwen():
    assert smart_resize(1080, 1920) == (1092, 1932)
    assert get_format("uitars-1.5").image_size((1920, 1080)) == (1932, 1092)
    assert get_format("uitars-1.0").image_size((1920, 1080)) == (1932, 1092)
    qwen = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl")
    for height, width in [(1080, 1920), (768, 1366), (2160, 3840), (240, 320), (30, 4000),
                          (4000, 4000), (57, 91)]:
        for bounds in [(100 * 28 * 28, 16384 * 28 * 28), (3136, 200704), (3136, 2116800)]:
            assert smart_resize(height, width, 28, *bounds) == qwen.smart_resize(height, width, 28,
                                                                                 *bounds)
    with pytest.raises(ValueError):
        smart_resize(10, 2500)


def test_prompt_is_osworld_text():
    ctx = context(0)
    messages = get_format("uitars-1.5").render(ctx)
    assert messages[0] == {"role": "system",
                           "content": [{"type": "text", "text": "You are a helpful assistant."}]}
    assert messages[1]["content"][0]["text"] == PROMPT_15
    prompt_10 = get_format("uitars-1.0").render(ctx)[1]["content"][0]["text"]
    assert "finished()\ncall_user() # Submit the task" in prompt_10
    assert "call_user" not in PROMPT_15
    assert prompt_10.endswith("## User Instruction\nPut the sum of Units in D26.\n")
    chinese = get_format("uitars-1.5", language="Chinese").prompt("x")
    assert "- Use Chinese in `Thought` part." in chinese


# --- request layout ---------------------------------------------------------------------------

@pytest.mark.parametrize("t, expected", [
    (0, ["system:text", "user:text", "user:image:now"]),
    (3, ["system:text", "user:text", "user:image:0", "assistant:text", "user:image:1",
         "assistant:text", "user:image:2", "assistant:text", "user:image:now"]),
    (8, ["system:text", "user:text"] + ["assistant:text"] * 4
     + [x for i in range(4, 8) for x in (f"user:image:{i}", "assistant:text")]
     + ["user:image:now"]),
])
def test_render_layout(t, expected):
    fmt = get_format("uitars-1.5")
    messages = fmt.render(context(t))
    assert layout(messages) == expected
    assert sum(m["content"][0]["type"] == "image_url" for m in messages) == min(t + 1, 5)
    assistant = [m["content"][0]["text"] for m in messages if m["role"] == "assistant"]
    assert assistant == [f"Thought: step {i}\nAction: click(start_box='<|box_start|>({i},{i})"
                         "<|box_end|>')" for i in range(t)]
    for message in messages:
        if message["content"][0]["type"] == "image_url":
            image = decode(message["content"][0])
            assert image.size == fmt.image_size((320, 180)) and image.mode == "RGB"


def test_render_history_options_and_missing_screenshots():
    ctx = context(8)
    old = [s.model_copy(update={"screenshot": None}) if i < 4 else s
           for i, s in enumerate(ctx.history)]
    fmt = get_format("uitars-1.5")
    assert fmt.render(ctx.model_copy(update={"history": old})) == fmt.render(ctx)
    with pytest.raises(ValueError, match="step 4"):
        fmt.render(ctx.model_copy(update={"history": [s.model_copy(update={"screenshot": None})
                                                      for s in ctx.history]}))
    assert layout(get_format("uitars-1.5", history_n=1).render(ctx)) == (
        ["system:text", "user:text"] + ["assistant:text"] * 8 + ["user:image:now"])
    tiny = get_format("uitars-1.5", min_pixels=3136, max_pixels=128 * 28 * 28)
    assert tiny.image_size(SCREEN) == (420, 224)
    assert decode(tiny.render(context(0, screen=SCREEN))[-1]["content"][0]).size == (420, 224)


def test_assistant_text_adds_box_tokens_once():
    fmt = get_format("uitars-1.5")
    raw = ("Thought: drag\nAction: drag(start_box='(1,2)', end_box='(3, 4)')\n\n"
           "hotkey(key='ctrl c')\n")
    boxed = ("Thought: drag\nAction: drag(start_box='<|box_start|>(1,2)<|box_end|>', "
             "end_box='<|box_start|>(3, 4)<|box_end|>')\n\nhotkey(key='ctrl c')")
    assert fmt.assistant_text(raw) == boxed
    assert fmt.assistant_text(boxed) == boxed


# --- parsing a corpus of real-looking responses -----------------------------------------------

EXPECTED: dict[str, list[str] | None] = {
    "v15_click_bare.txt": ["click(start_box='(409,624)')"],
    "v15_click_box_tokens.txt": ["click(start_box='(24,13)')"],
    "v15_chinese_thought.txt": ["click(start_box='(899,624)')"],
    "v15_multi_actions.txt": ["click(start_box='(409,624)')", "type(content='=SUM(D2:D25)\\n')"],
    "v15_drag_select.txt": ["drag(start_box='(65,175)', end_box='(906,604)')"],
    "v15_hotkey_save.txt": ["hotkey(key='ctrl s')"],
    "v15_type_unescaped_quote.txt": ["type(content='Q1\\'s total revenue')"],
    "v15_scroll_down.txt": ["scroll(start_box='(960,540)', direction='down')"],
    "v15_finished_answer.txt": ["finished(content='The total revenue is 48,213.50.')"],
    "v15_box_four_numbers.txt": ["click(start_box='(318,99)')"],
    "v15_point_tags.txt": ["right_single(start_box='(52,1020)')"],
    "v15_reflection_summary.txt": ["click(start_box='(409,233)')"],
    "v15_edge_clamp.txt": ["left_double(start_box='(1919,1079)')"],
    "v15_wait.txt": ["wait()"],
    "v15_type_chinese_content.txt": ["type(content='季度销售报告')"],
    "v15_code_fence.txt": ["click(start_box='(1055,593)')"],
    "v15_hotkey_plus.txt": ["hotkey(key='ctrl +')"],
    "v15_type_literal_newline.txt": ["type(content='Checked by QA\\nApproved')"],
    "v10_click_relative.txt": ["click(start_box='(983,94)')"],
    "v10_call_user.txt": ["call_user()"],
    "v10_finished_empty.txt": ["finished()"],
    "v10_drag_box_tokens.txt": ["drag(start_box='(65,176)', end_box='(65,610)')"],
    "bad_no_action.txt": None,
    "bad_unknown_action.txt": None,
    "bad_outside_image.txt": None,
    "bad_garbled_point.txt": None,
    "bad_unknown_key.txt": None,
    "bad_empty_action.txt": None,
    "bad_truncated.txt": None,
    "bad_trailing_prose.txt": None,
    "bad_python_code.txt": None,
    "bad_negative.txt": None,
}


def test_corpus_is_complete():
    assert sorted(p.name for p in CORPUS.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_corpus(name):
    text = (CORPUS / name).read_text(encoding="utf-8")
    fmt = get_format("uitars-1.0" if name.startswith("v10") else "uitars-1.5")
    if EXPECTED[name] is None:
        with pytest.raises(ParseError, match=r"\w"):
            fmt.parse(text, SCREEN)
        return
    parsed = fmt.parse(text, SCREEN)
    assert [to_call(a) for a in parsed.actions] == EXPECTED[name]
    assert parsed.raw == text


def test_parse_thoughts():
    def read(name: str) -> Parsed:
        return get_format("uitars-1.5").parse((CORPUS / name).read_text("utf-8"), SCREEN)

    assert read("v15_chinese_thought.txt").thought.startswith("我看到Calc窗口已经打开了")
    assert read("v15_reflection_summary.txt").thought == "Click cell D5 to select the correct cell."
    assert read("v15_type_unescaped_quote.txt").thought == ""
    assert read("v15_code_fence.txt").thought.startswith('A "Keep current format" dialog')


def test_parse_edges():
    fmt = get_format("uitars-1.5")
    assert fmt.parse("Action: click(start_box='(1932,0)')", SCREEN).actions == [Click(x=1919, y=0)]
    with pytest.raises(ParseError, match="outside"):
        fmt.parse("Action: click(start_box='(1933,0)')", SCREEN)
    assert get_format("uitars-1.0").parse("Action: click(start_box='(1000,1000)')",
                                          SCREEN).actions == [Click(x=1919, y=1079)]
    with pytest.raises(ParseError):
        fmt.parse(None, SCREEN)  # type: ignore[arg-type]


# --- unparse ----------------------------------------------------------------------------------

def test_unparse_text():
    fmt = get_format("uitars-1.5")
    assert fmt.unparse("Select D26.", [Click(x=409, y=624), Type(content="=SUM(D2:D25)\n")],
                       SCREEN) == ("Thought: Select D26.\nAction: click(start_box='<|box_start|>"
                                   "(412,631)<|box_end|>')\n\ntype(content='=SUM(D2:D25)\\n')")
    assert get_format("uitars-1.0").unparse("Bold.", [Click(x=983, y=94)], SCREEN) == (
        "Thought: Bold.\nAction: click(start_box='<|box_start|>(512,87)<|box_end|>')")
    with pytest.raises(ValueError):
        fmt.unparse("x", [Click(x=1920, y=0)], SCREEN)
    with pytest.raises(ValueError):
        fmt.unparse("x\nAction: wait()", [Wait()], SCREEN)


# --- registry ---------------------------------------------------------------------------------

def test_registry_and_processor_options():
    assert set(FORMATS) == {"uitars-1.5", "uitars-1.0"}
    for name in FORMATS:
        assert get_format(name).name == name
    with pytest.raises(ValueError, match="known"):
        get_format("uitars-9")
    assert UITars15.processor_options({"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14,
                              "merge_size": 2}) == {"factor": 28, "min_pixels": 3136,
                                                     "max_pixels": 12845056}
    transformers = pytest.importorskip("transformers")
    config = transformers.Qwen2VLImageProcessor(min_pixels=3136, max_pixels=200704).to_dict()
    options = UITars15.processor_options(config)
    assert options == {"factor": 28, "min_pixels": 3136, "max_pixels": 200704}
    assert UITars15.processor_options({"image_processor": config, "processor_class": "x"}) == options
    assert get_format("uitars-1.5", **options).image_size(SCREEN) == (588, 336)


# --- properties -------------------------------------------------------------------------------

FRAGMENTS = ["Thought: ", "Action: ", "Reflection: ", "Action_Summary: ", "click(", "drag(",
             "type(content=", "hotkey(key=", "scroll(", "finished(", "call_user()", "wait()",
             "start_box=", "end_box=", "point=", "direction=", "'", '"', "(", ")", ",", "[", "]",
             "<|box_start|>", "<|box_end|>", "<point>", "</point>", "0", "12", "1932", "1092",
             "99999999", "1e9", ".5", "-", " ", "\n", "\n\n", "\\", "ctrl", "é", "```", "=", "**"]


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join),
                      st.builds("Thought: {}\nAction: {}".format, st.text(), st.text())),
       name=st.sampled_from(sorted(FORMATS)), profile=st.sampled_from(["cua", "osworld"]),
       screen=st.tuples(st.integers(1, 5000), st.integers(1, 5000)))
def test_parse_total(text, name, profile, screen):
    fmt = get_format(name, profile=profile)
    assume(max(screen) / min(screen) <= 200)
    try:
        parsed = fmt.parse(text, screen)
    except ParseError as error:
        assert str(error)
    else:
        assert parsed.actions and parsed.raw == text


SCREENS = {"uitars-1.5": [(1920, 1080), (1280, 720), (1366, 768), (1024, 768), (1440, 900),
                          (2560, 1440), (3840, 2160), (800, 600)],
           # 0-1000 coordinates are a grid of W/1000 px: within 1 px only up to 2000 px a side
           "uitars-1.0": [(1920, 1080), (1280, 720), (1366, 768), (1024, 768), (1440, 900),
                          (2000, 1200), (800, 600)]}
DIRECTIONS = st.sampled_from(["up", "down", "left", "right"])
THOUGHTS = st.text(st.characters(categories=["L", "N", "P", "Zs"]), max_size=60).filter(
    lambda t: "Action" not in t and "Thought:" not in t)


def canonical_actions(screen: tuple[int, int]) -> st.SearchStrategy:
    xs, ys = st.integers(0, screen[0] - 1), st.integers(0, screen[1] - 1)
    return st.one_of(
        *(st.builds(kind, x=xs, y=ys) for kind in (Click, LeftDouble, RightSingle)),
        st.builds(Drag, x1=xs, y1=ys, x2=xs, y2=ys),
        st.builds(Scroll, x=xs, y=ys, direction=DIRECTIONS),
        st.builds(Scroll, direction=DIRECTIONS),
        st.builds(Hotkey, keys=st.lists(st.sampled_from(sorted(KEYSYMS)), min_size=1, max_size=3)),
        st.builds(Type, content=st.text()), st.builds(Finished, content=st.text()),
        st.just(Wait()), st.just(CallUser()))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(FORMATS)), thought=THOUGHTS,
       profile=st.sampled_from(["cua", "osworld"]))
def test_unparse_parse_round_trip(data, name, thought, profile):
    fmt = get_format(name, profile=profile)
    screen = data.draw(st.sampled_from(SCREENS[name]))
    actions = data.draw(st.lists(canonical_actions(screen), min_size=1, max_size=3))
    parsed = fmt.parse(fmt.unparse(thought, actions, screen), screen)
    assert parsed.thought == thought.strip()
    assert len(parsed.actions) == len(actions)
    for before, after in zip(actions, parsed.actions, strict=True):
        a, b = before.model_dump(), after.model_dump()
        for key in a:
            if key in ("x", "y", "x1", "y1", "x2", "y2") and a[key] is not None:
                assert abs(a[key] - b[key]) <= 1, (key, before, after)
            else:
                assert a[key] == b[key]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.binary(min_size=1, max_size=64), t=st.integers(0, 7),
       name=st.sampled_from(sorted(FORMATS)), screen=st.sampled_from([(64, 48), (200, 120)]))
def test_render_is_deterministic(seed, t, name, screen):
    def shot(i: int) -> bytes:
        pixels = (seed * (screen[0] * screen[1] * 3 // len(seed) + 1))[: screen[0] * screen[1] * 3]
        out = io.BytesIO()
        Image.frombytes("RGB", screen, bytes((b + i) % 256 for b in pixels)).save(out, "PNG")
        return out.getvalue()

    ctx = Context(instruction=seed.hex(), screenshot=shot(99), screen=screen,
                  history=[Step(screenshot=shot(i), response=f"Action: click(start_box='({i},1)')")
                           for i in range(t)])
    fmt = get_format(name)
    first = fmt.render(ctx)
    uitars._data_url.cache_clear()
    second = fmt.render(Context.model_validate(ctx.model_dump()))
    assert first == second
    assert sum(m["content"][0]["type"] == "image_url" for m in first) == min(t + 1, 5)
    assert math.prod(decode(first[-1]["content"][0]).size) == math.prod(fmt.image_size(screen))


# --- the osworld profile (OSWorld's reference run; tests/test_uitars_reference.py drives both) ---

def test_osworld_profile_sends_the_screenshot_as_taken_and_answers_in_the_processors_grid():
    cua, osworld = get_format("uitars-1.5"), get_format("uitars-1.5", profile="osworld")
    assert (cua.language, osworld.language) == ("English", "Chinese")
    assert get_format("uitars-1.5", profile="osworld", language="English").language == "English"
    assert "Use Chinese in `Thought` part." in osworld.prompt("x")
    assert cua.image_size(SCREEN) == osworld.grid(SCREEN) == cua.grid(SCREEN) == (1932, 1092)
    assert osworld.image_size(SCREEN) == SCREEN
    assert osworld.image_tokens(SCREEN) == cua.image_tokens(SCREEN)
    shot = png((10, 20, 30), size=SCREEN)
    ctx = Context(instruction="x", screenshot=shot, screen=SCREEN)
    [sent] = [decode(m["content"][0]) for m in osworld.render(ctx) if m["role"] == "user"
              and m["content"][0]["type"] == "image_url"]
    assert sent.size == SCREEN and sent.getpixel((0, 0)) == (10, 20, 30)
    big = get_format("uitars-1.5", profile="osworld", max_pixels=1000 * 500)
    assert big.image_size(SCREEN) == (942, 530)  # sides scaled by sqrt(area ratio), truncated
    with pytest.raises(ValueError):
        get_format("uitars-1.5", profile="vm")


def test_osworld_profile_clamps_truncates_and_refuses_box_tokens():
    fmt = get_format("uitars-1.5", profile="osworld")
    edge = fmt.parse("Thought: t\nAction: click(start_box='(1940,1100)')", SCREEN).actions
    assert edge == [Click(x=1919, y=1079)]  # the cua profile refuses it
    with pytest.raises(ParseError):
        get_format("uitars-1.5").parse("Action: click(start_box='(1940,1100)')", SCREEN)
    # pyautogui truncates: 25 * 1920 / 1932 = 24.84 is pixel 24 (cua's profile rounds to 25)
    assert fmt.parse("Action: click(start_box='(25,25)')", SCREEN).actions == [Click(x=24, y=24)]
    assert get_format("uitars-1.5").parse("Action: click(start_box='(25,25)')",
                                          SCREEN).actions == [Click(x=25, y=25)]
    with pytest.raises(ParseError, match="box tokens"):
        fmt.parse("Action: click(start_box='<|box_start|>(5,5)<|box_end|>')", SCREEN)
    reply = fmt.unparse("t", [Click(x=24, y=24)], SCREEN)
    assert "<|box_start|>" not in reply  # as vLLM returns it; history adds the tokens
    assert fmt.assistant_text(f"  {reply} ") == (
        "Thought: t\nAction: click(start_box='<|box_start|>(25,25)<|box_end|>')")
    assert fmt.assistant_text("Action: click(start_box='(1, 2)')") == (
        "Action: click(start_box='(1, 2)')")  # OSWorld wraps only '(x,y)' without a space
