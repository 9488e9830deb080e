"""UI-TARS formats as OSWorld runs them (``mm_agents/uitars15_v1.py``, ``uitars_agent.py``).

Layout at step t: system ``You are a helpful assistant.``, one user turn with the computer-use
prompt, then per past step a user turn with its screenshot (only for the last ``history_n - 1``
steps) and an assistant turn with its response (box tokens added), then a user turn with the
current screenshot.
UI-TARS-1.5 (Qwen2.5-VL) answers absolute pixels of the ``smart_resize``'d screenshot; UI-TARS-1.0
(Qwen2-VL) answers relative 0-1000 coordinates.

Two profiles: ``cua`` (the default) sends screenshots already ``smart_resize``'d, rounds
coordinates to the nearest pixel and refuses one past the screen; ``osworld`` is OSWorld's
reference run (``run_multienv_uitars15_v1.py``): Thought in Chinese, the screenshot as taken
(resized only outside the pixel bounds, the server's processor does the rest), Pillow's default PNG,
coordinates truncated and clamped to the screen as pyautogui and X do, box tokens in a reply refused
as its parser refuses them, and its loop (:data:`OSWORLD_LOOP`).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Literal

from PIL import Image

from cua.actions import Action, parse_calls, to_call, validate
from cua.formats.base import Context, LoopPolicy, Message, Parsed, ParseError

SYSTEM_PROMPT = "You are a helpful assistant."

# The "thought" prompt of OSWorld's UI-TARS agents, including the space after "the task.".
PROMPT = (
    "You are a GUI agent. You are given a task and your action history, with screenshots. "
    "You need to perform the next action to complete the task. \n"
    """
## Output Format
```
Thought: ...
Action: ...
```

## Action Space
{action_space}

## Note
- Use {language} in `Thought` part.
- Write a small plan and finally summarize your next action (with its target element) in one \
sentence in `Thought` part.

## User Instruction
{instruction}
"""
)

_COMMON_ACTIONS = r"""
click(start_box='<|box_start|>(x1,y1)<|box_end|>')
left_double(start_box='<|box_start|>(x1,y1)<|box_end|>')
right_single(start_box='<|box_start|>(x1,y1)<|box_end|>')
drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')
hotkey(key='')
type(content='') #If you want to submit your input, use "\n" at the end of `content`.
scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left')
wait() #Sleep for 5s and take a screenshot to check for any changes.
"""
# OSWorld infer_mode "qwen25vl_normal" (UI-TARS-1.5) and "qwen2vl_user" (UI-TARS-1.0).
ACTION_SPACE_15 = _COMMON_ACTIONS + (
    r"""finished(content='xxx') # Use escape characters \', \", and \n in content part to ensure """
    "we can parse the content in normal python string format.\n"
)
ACTION_SPACE_10 = _COMMON_ACTIONS + (
    "finished()\ncall_user() # Submit the task and call the user when the task is unsolvable, "
    "or when you need the user's help.\n"
)

# The reference run's loop: frequency_penalty 1 and top_p 0.9 on every request, three requests
# per step (the second and third at temperature 1) while the reply cannot be parsed, call_user
# answered by a wait three times, the first finished/wait/call_user of a step decides it alone,
# and the step that reaches max_steps answers FAIL.
OSWORLD_LOOP = LoopPolicy(sampling={"frequency_penalty": 1, "top_p": 0.9}, attempts=3,
                          retry_sampling={"temperature": 1}, call_user_waits=3,
                          first_control_decides=True, fail_at_max_steps=True)
LANGUAGE = {"cua": "English", "osworld": "Chinese"}  # of the Thought, by profile

_AXIS = {"x": 0, "y": 1, "x1": 0, "y1": 1, "x2": 0, "y2": 1}
_ACTION_LINE = re.compile(r"^[ \t]*Action:[ \t]*", re.M)
_BARE_BOX = re.compile(r"""((?:start|end)_box=['"])(\([^()'"<>]*\))(?=['"])""")
_OSWORLD_BOX = re.compile(r"(start_box|end_box)='\((\d+),\s*(\d+)\)'")
_BOX_TOKENS = ("<|box_start|>", "<|box_end|>")


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 100 * 28 * 28,
                 max_pixels: int = 16384 * 28 * 28) -> tuple[int, int]:
    """Qwen2.5-VL's resize: (height, width) as multiples of ``factor``, area within the bounds."""
    if min(height, width) <= 0 or max(height, width) / min(height, width) > 200:
        raise ValueError(f"cannot resize a {width}x{height} image (aspect ratio above 200)")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def linear_resize(width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """OSWorld's UI-TARS agent's resize before sending: outside the pixel bounds, both sides
    scaled by the square root of the area ratio (truncated when shrinking, rounded up when
    growing); the aspect ratio kept, so relative coordinates stay valid."""
    if width * height > max_pixels:
        factor = math.sqrt(max_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
    if width * height < min_pixels:
        factor = math.sqrt(min_pixels / (width * height))
        width, height = math.ceil(width * factor), math.ceil(height * factor)
    return width, height


@lru_cache(maxsize=16)
def _data_url(png: bytes, size: tuple[int, int], profile: str) -> str:
    """The screenshot as sent, a PNG data URL of ``size``: cua's profile converts to RGB, resizes
    bicubic and writes a fast PNG; OSWorld's resizes first (Pillow's default filter, bicubic),
    then converts, and writes Pillow's default PNG."""
    image = Image.open(io.BytesIO(png))
    if profile == "osworld":
        image = image.resize(size) if image.size != size else image
        image = image.convert("RGB") if image.mode != "RGB" else image
        options = {}
    else:
        image = image.convert("RGB")
        image = image.resize(size, Image.Resampling.BICUBIC) if image.size != size else image
        options = {"compress_level": 1}
    out = io.BytesIO()
    image.save(out, format="PNG", **options)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _message(role: str, block: dict[str, Any]) -> Message:
    return {"role": role, "content": [block]}


def _text(role: str, text: str) -> Message:
    return _message(role, {"type": "text", "text": text})


def _thought(head: str) -> str:
    """The thought before the Action line: Action_Summary if given, else Thought, else the text."""
    for label in ("Action_Summary:", "Thought:"):
        if label in head:
            return head.partition(label)[2].strip()
    return re.sub(r"^\s*Reflection:", "", head).strip()


@dataclass(frozen=True, kw_only=True)
class UITars15:
    """UI-TARS-1.5: absolute pixels of the smart_resize'd screenshot."""

    name: ClassVar[str] = "uitars-1.5"
    action_space: ClassVar[str] = ACTION_SPACE_15

    min_pixels: int = 100 * 28 * 28
    max_pixels: int = 16384 * 28 * 28
    factor: int = 28
    history_n: int = 5  # screenshots per request: the current one plus history_n - 1 past ones
    profile: Literal["cua", "osworld"] = "cua"
    language: str | None = None  # of the Thought; None: the profile's

    def __post_init__(self) -> None:
        if (self.history_n < 1 or self.factor < 1 or self.profile not in LANGUAGE
                or not 0 < self.min_pixels <= self.max_pixels):
            raise ValueError(f"invalid {self.name} options: {self}")
        if self.language is None:
            object.__setattr__(self, "language", LANGUAGE[self.profile])

    @property
    def loop(self) -> LoopPolicy:
        return OSWORLD_LOOP if self.profile == "osworld" else LoopPolicy()

    @classmethod
    def processor_options(cls, config: Mapping[str, Any]) -> dict[str, int]:
        """Options (factor, min_pixels, max_pixels) from a model dir's loaded
        ``preprocessor_config.json`` or (transformers 5) ``processor_config.json``."""
        config = config.get("image_processor") or config
        size = config.get("size") or {}
        options = {"factor": int(config.get("patch_size", 14)) * int(config.get("merge_size", 2))}
        for key, alias in (("min_pixels", "shortest_edge"), ("max_pixels", "longest_edge")):
            value = config.get(key) or size.get(alias)
            if value is not None:
                options[key] = int(value)
        return options

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **options: Any) -> UITars15:
        return dataclasses.replace(self, **options) if options else self

    def image_tokens(self, screen: tuple[int, int]) -> int:
        """One token per ``factor`` x ``factor`` pixels of the screenshot as the model's processor
        resizes it, plus ``<|vision_start|>`` and ``<|vision_end|>``."""
        width, height = self.processed_size(screen)
        return (width // self.factor) * (height // self.factor) + 2

    def image_size(self, screen: tuple[int, int]) -> tuple[int, int]:
        if self.profile == "osworld":
            return linear_resize(*screen, self.min_pixels, self.max_pixels)
        return self._smart_resize(screen)

    def processed_size(self, screen: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of the screenshot once the model's processor has resized it."""
        return self._smart_resize(self.image_size(screen))

    def _smart_resize(self, size: tuple[int, int]) -> tuple[int, int]:
        height, width = smart_resize(size[1], size[0], self.factor, self.min_pixels,
                                     self.max_pixels)
        return width, height

    def grid(self, screen: tuple[int, int]) -> tuple[int, int]:
        return self.processed_size(screen)

    def prompt(self, instruction: str) -> str:
        return PROMPT.format(action_space=self.action_space, language=self.language,
                             instruction=instruction)

    def assistant_text(self, response: str) -> str:
        """Strip the response and wrap bare ``start_box='(x,y)'`` coordinates in box tokens
        (OSWorld's profile: only ``'(x,y)'`` without spaces, in single quotes, after an
        ``Action: ``, each action stripped and the actions joined by a blank line, as its
        reference agent does)."""
        text = response.strip()
        if self.profile == "cua":
            return _BARE_BOX.sub(r"\1<|box_start|>\2<|box_end|>", text)
        if "Action: " not in text or "start_box=" not in text:
            return text
        head, *actions = text.split("Action: ")
        wrapped = []
        for action in map(str.strip, actions):
            for kind, x, y in _OSWORLD_BOX.findall(action):
                action = action.replace(f"{kind}='({x},{y})'",
                                        f"{kind}='<|box_start|>({x},{y})<|box_end|>'")
            wrapped.append(action)
        return f"{head}Action: " + "\n\n".join(wrapped)

    def render(self, ctx: Context) -> list[Message]:
        size = self.image_size(ctx.screen)

        def image(png: bytes) -> Message:
            url = _data_url(png, size, self.profile)
            return _message("user", {"type": "image_url", "image_url": {"url": url}})

        messages = [_text("system", SYSTEM_PROMPT), _text("user", self.prompt(ctx.instruction))]
        first_shown = len(ctx.history) - (self.history_n - 1)
        for index, step in enumerate(ctx.history):
            if index >= first_shown:
                if step.screenshot is None:
                    raise ValueError(f"step {index} is among the last {self.history_n - 1} steps "
                                     "and needs its screenshot")
                messages.append(image(step.screenshot))
            messages.append(_text("assistant", self.assistant_text(step.response)))
        messages.append(image(ctx.screenshot))
        return messages

    def parse(self, text: str, screen: tuple[int, int]) -> Parsed:
        if not isinstance(text, str):
            raise ParseError(f"expected the response text, got {type(text).__name__}")
        try:
            return self._parse(text, screen)
        except (ValueError, RecursionError) as error:  # ActionError and ValidationError included
            raise ParseError(str(error)) from None

    def _parse(self, text: str, screen: tuple[int, int]) -> Parsed:
        body = text.strip()
        if body.startswith("```"):  # the prompt shows the format inside a code fence
            body = body.partition("\n")[2].removesuffix("```")
        match = _ACTION_LINE.search(body)
        if match is None:
            raise ParseError("no 'Action:' line in the response")
        grid = self.grid(screen)
        if self.profile == "osworld" and any(t in body[match.end():] for t in _BOX_TOKENS):
            raise ParseError("box tokens in the actions (OSWorld's parser refuses them)")

        def scale(value: int, axis: int) -> int:
            if self.profile == "osworld":  # pyautogui truncates, X keeps the pointer on screen
                return min(int(round(value / grid[axis] * screen[axis], 3)), screen[axis] - 1)
            pixel = math.floor(value * screen[axis] / grid[axis] + 0.5)
            if pixel > screen[axis]:
                raise ParseError(f"coordinate {value} is outside the model's {grid[0]}x{grid[1]} "
                                 f"space for a {screen[0]}x{screen[1]} screen")
            return min(pixel, screen[axis] - 1)

        actions = [validate(self._map(action, scale), *screen)
                   for action in parse_calls(body[match.end():])]
        return Parsed(thought=_thought(body[:match.start()]), actions=actions, raw=text)

    def unparse(self, thought: str, actions: list[Action], screen: tuple[int, int]) -> str:
        """``Thought: ...`` then ``Action: ...`` (with box tokens in cua's profile); actions split
        by a blank line."""
        if not actions:
            raise ValueError("unparse needs at least one action")
        if _ACTION_LINE.search(thought):
            raise ValueError("a thought must not contain a line starting with 'Action:'")
        grid = self.grid(screen)

        def scale(value: int, axis: int) -> int:
            exact = value * grid[axis] / screen[axis]  # the profile's parse gives `value` back
            return min(math.ceil(exact) if self.profile == "osworld" else math.floor(exact + 0.5),
                       grid[axis] - 1)

        calls = [to_call(self._map(validate(action, *screen), scale),
                         box_tokens=self.profile == "cua")  # vLLM's replies hold none
                 for action in actions]
        return f"Thought: {thought}\nAction: " + "\n\n".join(calls)

    @staticmethod
    def _map(action: Action, scale: Callable[[int, int], int]) -> Action:
        """Apply ``scale(value, axis)`` to every coordinate of an action."""
        return action.model_copy(update={key: scale(value, _AXIS[key]) for key, value in action
                                         if key in _AXIS and value is not None})


@dataclass(frozen=True, kw_only=True)
class UITars10(UITars15):
    """UI-TARS-1.0: relative 0-1000 coordinates; OSWorld's qwen2vl_user prompt and pixel bounds."""

    name: ClassVar[str] = "uitars-1.0"
    action_space: ClassVar[str] = ACTION_SPACE_10

    min_pixels: int = 3136
    max_pixels: int = 2116800

    def grid(self, screen: tuple[int, int]) -> tuple[int, int]:
        return 1000, 1000
