"""cua's `osworld` profile of UI-TARS-1.5 against OSWorld's own reference agent: `UITARSAgent`
of `mm_agents/uitars15_v1.py` (desktop-env, in the scorer venv), with the runtime settings of
OSWorld's `run_multienv_uitars15_v1.py`, and cua's rollout loop are driven over the same recorded
screens, each against a scripted OpenAI-compatible endpoint on 127.0.0.1 answering the same replies.
They must send the same requests (messages, images, sampling parameters, retries included) and do
the same things: the same actions at the same pixels, the same waits, DONE and FAIL.

The screens are synthetic and the endpoint is a test double of the model; the reference's loop
around `predict` is `lib_run_single.run_single_example`'s (one prediction per step until DONE or
FAIL), and its pyautogui code is read back into actions, with X keeping the pointer on screen."""

from __future__ import annotations

import ast
import base64
import io
import json
import random
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw

from cua.actions import Click, Drag, Hotkey, LeftDouble, RightSingle, Type, Wait
from cua.collect.client import ChatModel
from cua.collect.episode import rollout
from cua.collect.roles import ModelAgent
from cua.collect.store import ScreenBuffer
from cua.evaluate.osworld import scorer_env
from cua.formats import get_format
from cua.recipes import AgentSettings, ModelConfig
from cua.records import Task
from tests.conftest import chat_reply
from tests.test_osworld_scorer import scorer_venv_or_skip

SCREEN = (1920, 1080)
MODEL = "uitars15-7b"
INSTRUCTION = "把文件保存为 report。"
# run_multienv_uitars15_v1.py's runtime_conf for infer_mode qwen25vl_normal.
RUNTIME_CONF = {"infer_mode": "qwen25vl_normal", "prompt_style": "qwen25vl_normal",
                "input_swap": True, "language": "Chinese", "history_n": 5,
                "max_pixels": 16384 * 28 * 28, "min_pixels": 100 * 28 * 28,
                "callusr_tolerance": 3, "temperature": 0.0, "top_k": -1, "top_p": 0.9,
                "max_tokens": 1000}

REFERENCE = """
import json, os, sys
spec = json.load(open(sys.argv[1]))
os.environ.update(DOUBAO_API_URL=spec["base_url"], DOUBAO_API_KEY="EMPTY")
from mm_agents.uitars15_v1 import UITARSAgent
agent = UITARSAgent(model=spec["model"], runtime_conf=spec["runtime_conf"],
                    max_trajectory_length=spec["max_steps"], model_type="qwen25vl")
agent.reset()
steps = []
for frame in spec["frames"][:spec["max_steps"]]:
    response, actions = agent.predict(spec["instruction"], {"screenshot": open(frame, "rb").read()})
    steps.append(actions)
    if "DONE" in actions or "FAIL" in actions:
        break
json.dump(steps, open(spec["out"], "w"))
"""

SCENARIOS = {
    "a task with retries, a call_user, an edge click and finished among actions": (15, [
        "Thought: 我先点击文件菜单。\nAction: click(start_box='(24,40)')",
        "我不知道该怎么办。",  # no Action: asked again at temperature 1
        "Thought: 点击。\nAction: click(start_box='<|box_start|>(5,5)<|box_end|>')",  # box tokens
        "Thought: 输入文件名。\nAction: type(content='report\\n')",
        "Thought: 我需要用户帮助。\nAction: call_user()",  # answered by a wait
        "Thought: 保存。\nAction: click(start_box='(1940,1100)')\n\nhotkey(key='ctrl s')",
        "Thought: 拖动。\nAction: drag(start_box='(100,101)', end_box='(301,417)')",
        "Thought: 右键，再双击。\nAction: right_single(start_box='(777,333)')\n\n"
        "left_double(start_box='(778,334)')",
        "Thought: 完成了。\nAction: click(start_box='(10,10)')\n\nfinished(content='ok')",
    ]),
    "the step limit answers FAIL": (2, [
        "Thought: 点击。\nAction: click(start_box='(500,500)')",
        "Thought: 再点击。\nAction: click(start_box='(501,500)')",
    ]),
    "three unreadable replies end the episode": (15, ["不。", "不行。", "Action: click(x=1)"]),
    "call_user past its tolerance answers FAIL": (15, ["Action: call_user()"] * 4),
}


def screens(count: int) -> list[bytes]:
    """Screens of a made-up desktop, each different."""
    rng, out = random.Random(7), []
    for index in range(count):
        image = Image.new("RGB", SCREEN, (236, 236, 236))
        draw = ImageDraw.Draw(image)
        for _ in range(40):
            x, y = rng.randrange(SCREEN[0] - 200), rng.randrange(SCREEN[1] - 100)
            draw.rectangle((x, y, x + rng.randrange(20, 200), y + rng.randrange(10, 100)),
                           fill=tuple(rng.randrange(256) for _ in range(3)))
        draw.text((20, 20), f"step {index}", fill=(0, 0, 0))
        out.append(_png(image))
    return out


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def run_reference(scratch: Path, frames: list[bytes], replies: list[str], max_steps: int,
                  double) -> tuple[list[list[tuple]], list[dict]]:
    server = double(*[(200, chat_reply(text), 0) for text in replies])
    paths = []
    for index, png in enumerate(frames):
        paths.append(scratch / f"frame{index}.png")
        paths[-1].write_bytes(png)
    spec = {"base_url": server.url, "model": MODEL, "runtime_conf": RUNTIME_CONF,
            "max_steps": max_steps, "instruction": INSTRUCTION, "frames": list(map(str, paths)),
            "out": str(scratch / "steps.json")}
    (scratch / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run([str(scorer_env.python()), "-c", REFERENCE, scratch / "spec.json"],
                          capture_output=True, text=True, timeout=300, cwd=scratch,
                          env=scorer_env.snippet_env(scratch))
    assert done.returncode == 0, done.stderr[-3000:]
    steps = json.loads((scratch / "steps.json").read_text())
    return [[a for code in actions for a in reference_actions(code)] for actions in steps], \
        server.requests


def reference_actions(code: str) -> list[tuple]:
    """The actions of one item of the reference's step: its pyautogui code read back, or the
    WAIT, DONE and FAIL it answers. The pointer stays on screen (X clamps it)."""
    if code in ("WAIT", "DONE", "FAIL"):
        return [(code,)]
    on_screen = lambda x, y: (min(int(float(x)), SCREEN[0] - 1),
                              min(int(float(y)), SCREEN[1] - 1))
    actions, typed = [], None
    for line in filter(None, (line.strip() for line in code.split("\n"))):
        if match := re.fullmatch(r"pyautogui\.(click|doubleClick)\(([\d.]+), ([\d.]+), "
                                 r"button='(left|right)'\)", line):
            kind = {"doubleClick": "left_double", "right": "right_single"}.get(
                match[1], {"left": "click", "right": "right_single"}[match[4]])
            actions.append((kind, *on_screen(match[2], match[3])))
        elif match := re.fullmatch(r"pyautogui\.moveTo\(([\d.]+), ([\d.]+)\)", line):
            start = on_screen(match[1], match[2])
        elif match := re.fullmatch(r"pyautogui\.dragTo\(([\d.]+), ([\d.]+), duration=1\.0\)",
                                   line):
            actions.append(("drag", *start, *on_screen(match[1], match[2])))
        elif match := re.fullmatch(r"pyautogui\.hotkey\((.*)\)", line):
            keys = ast.literal_eval(f"[{match[1]}]")
            if keys != ["ctrl", "v"] or typed is None:
                actions.append(("hotkey", *keys))
        elif match := re.fullmatch(r"pyperclip\.copy\((.*)\)", line):
            typed = ast.literal_eval(match[1])
            actions.append(("type", typed))
        elif line == "pyautogui.press('enter')" and typed is not None:
            actions[-1] = ("type", typed + "\n")
    return actions


def cua_actions(action) -> tuple:
    match action:
        case Click() | LeftDouble() | RightSingle():
            return (action.type, action.x, action.y)
        case Drag():
            return ("drag", action.x1, action.y1, action.x2, action.y2)
        case Hotkey():
            return ("hotkey", *action.keys)
        case Type():
            return ("type", action.content)
        case Wait():
            return ("WAIT",)
    raise AssertionError(f"unexpected action {action}")


class RecordedScreens:
    """A desktop that shows the recorded screens, one per step, and records what it is asked
    to do (a test double of the desktop: only the loop is under test)."""

    def __init__(self, frames: list[bytes]):
        self.frames, self.shown, self.done = frames, -1, []
        self.spec = SimpleNamespace(screen=SimpleNamespace(width=SCREEN[0], height=SCREEN[1]))

    def screenshot_png(self) -> bytes:
        self.shown += 1
        self.done.append([])
        return self.frames[self.shown]

    def windows(self) -> list:
        return []

    def execute(self, actions: list, observe: bool = False) -> SimpleNamespace:
        self.done[self.shown] += [cua_actions(action) for action in actions]
        return SimpleNamespace(results=[], screen=None)  # the next step looks itself


def run_cua(frames: list[bytes], replies: list[str], max_steps: int, double
            ) -> tuple[list[list[tuple]], list[dict], object]:
    server = double(*[(200, chat_reply(text), 0) for text in replies])
    model = ChatModel(ModelConfig(name=MODEL, base_url=server.url, max_retries=0))
    fmt = get_format("uitars-1.5", profile="osworld")
    desktop = RecordedScreens(frames)
    task = Task(id="t", instruction=INSTRUCTION, app="calc", content="report.xlsx")
    done = rollout(desktop, task, ModelAgent(model, fmt), fmt, ScreenBuffer(),
                   AgentSettings(max_steps=max_steps))
    steps = desktop.done
    if done.last_action:
        steps[-1].append((done.last_action,))
    return steps, server.requests, done


def canonical(request: dict) -> str:
    """The request's JSON with sorted keys: equal strings are equal values of equal types."""
    return json.dumps(request, sort_keys=True)


def images_of(request: dict) -> list[Image.Image]:
    return [Image.open(io.BytesIO(_decode(block["image_url"]["url"])))
            for message in request["messages"] for block in message["content"]
            if block["type"] == "image_url"]


def _decode(url: str) -> bytes:
    return base64.b64decode(url.partition(",")[2])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cua_sends_and_does_what_osworlds_uitars_agent_does(scenario, tmp_path, double):
    scorer_venv_or_skip()
    max_steps, replies = SCENARIOS[scenario]
    frames = screens(len(replies))
    theirs, their_requests = run_reference(tmp_path, frames, replies, max_steps, double)
    ours, our_requests, done = run_cua(frames, replies, max_steps, double)

    assert len(our_requests) == len(their_requests) == len(replies)
    for index, (mine, reference) in enumerate(zip(our_requests, their_requests)):
        assert mine == reference, f"request {index} differs"
        assert canonical(mine) == canonical(reference), f"request {index}: 1 against 1.0?"
    assert ours == theirs
    # Only replies the loop kept are history: the last request holds no unparsed one.
    history = [m for m in our_requests[-1]["messages"] if m["role"] == "assistant"]
    assert not any("不知道" in m["content"][0]["text"] for m in history)
    for request in our_requests:
        assert all(image.size == SCREEN for image in images_of(request))
    if scenario.startswith("a task"):
        assert done.steps[1].discarded and len(done.steps[1].discarded) == 2
        assert [a[0] for a in ours[2]] == ["WAIT"] and ours[-1] == [("DONE",)]
        assert (done.terminated, done.last_action) == (True, "DONE")
