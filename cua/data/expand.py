"""Step-prefix expansion: step t of a kept trajectory becomes one training sample whose prompt is
exactly what the student's agent format renders at step t and whose completion is that step's
response in the student's format.

Pure: episode records and screenshot bytes come in (the caller reads them), samples go out. The
prompt is built by the format's own ``render`` (the function the executor and the eval agent call),
then its image blocks are swapped for references into a table of images stored once.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cua.collect.store import DATA_URL
from cua.formats import AgentFormat, Context, Message, Step, check_format, get_format
from cua.records import EpisodeRecord, Outcome

TextCounter = Callable[[str], int]
MESSAGE_OVERHEAD = 5  # <|im_start|>, the role, "\n", <|im_end|>, "\n"


class Filters(BaseModel):
    """Which trajectories are kept."""

    model_config = ConfigDict(extra="forbid")

    outcomes: list[Outcome] = ["success"]  # verified success by default
    judged: bool = True                # the precondition judge accepted the task
    max_steps: int | None = Field(None, ge=1)
    apps: list[str] = []               # app families (calc, impress, writer); empty: all
    families: list[str] = []           # template task families; empty: all


class ExpandConfig(BaseModel):
    """The student's format and how samples are built for it."""

    model_config = ConfigDict(extra="forbid")

    format: str = "uitars-1.5"
    format_options: dict[str, Any] = {}  # history_n, min_pixels, ... (a model dir's bounds win)
    max_tokens: int | None = Field(16384, ge=1)  # per-sample budget: older screenshots go first
    filters: Filters = Filters()

    @model_validator(mode="after")
    def _format_builds(self) -> ExpandConfig:
        check_format(self.format, self.format_options, "format_options")
        return self


@dataclasses.dataclass(frozen=True)
class Sample:
    """One training sample in TRL's conversational prompt/completion layout."""

    episode: str
    step: int
    prompt: list[Message]      # content blocks {"type": "text", "text": ...} / {"type": "image"}
    completion: list[Message]
    images: list[str]          # image keys, one per image block, in order
    history_n: int             # screenshots per request after the token budget
    tokens: int                # estimated tokens of prompt + completion


def rejection(episode: EpisodeRecord, filters: Filters) -> str | None:
    """Why a trajectory is not kept (None: kept)."""
    if episode.outcome not in filters.outcomes:
        return f"outcome {episode.outcome}"
    if filters.judged and not (episode.verdict and episode.verdict.feasible):
        return "not accepted by the judge"
    if not episode.steps:
        return "no steps"
    if filters.max_steps is not None and len(episode.steps) > filters.max_steps:
        return f"more than {filters.max_steps} steps"
    if filters.apps and episode.task.app not in filters.apps:
        return f"app {episode.task.app}"
    if filters.families and episode.task.family not in filters.families:
        return f"family {episode.task.family}"
    return None


def screen_of(episode: EpisodeRecord) -> tuple[int, int]:
    return episode.env.screen.width, episode.env.screen.height


def rollout_format(episode: EpisodeRecord) -> AgentFormat | None:
    """The format the rollout spoke, with the options it ran with."""
    try:
        return get_format(episode.agent_format, **episode.agent_format_options)
    except ValueError:
        return None


def speaks_as_recorded(episode: EpisodeRecord, fmt: AgentFormat) -> bool:
    """Whether the recorded responses are answers of ``fmt`` as they stand: the same format
    with the same coordinate space."""
    rollout, screen = rollout_format(episode), screen_of(episode)
    return (rollout is not None and rollout.name == fmt.name
            and rollout.grid(screen) == fmt.grid(screen))


def student_responses(episode: EpisodeRecord, fmt: AgentFormat) -> list[str | None]:
    """Each step's response as the student would have written it: a model's own text when it
    spoke this format, else the canonical thought + actions re-emitted with ``fmt.unparse``
    (None where a step has no valid actions to re-emit)."""
    screen, same = screen_of(episode), speaks_as_recorded(episode, fmt)
    out: list[str | None] = []
    for step in episode.steps:
        if same and step.call is not None:
            out.append(step.response)
        elif step.parse_error is None and step.actions:
            try:
                out.append(fmt.unparse(step.thought, step.actions, screen))
            except ValueError:
                out.append(None)
        else:
            out.append(None)
    return out


def recorded_responses(episode: EpisodeRecord, fmt: AgentFormat) -> list[str | None]:
    """The responses the rollout itself put into its history, when they are answers of
    ``fmt``; the student's otherwise. What the eval agent would have in its history."""
    if speaks_as_recorded(episode, fmt):
        return [step.response for step in episode.steps]
    return student_responses(episode, fmt)


def context_at(episode: EpisodeRecord, t: int, responses: list[str | None],
               screens: list[bytes]) -> Context:
    """The executor's context at step t: task, steps 0..t-1 with their responses, screen t."""
    if any(r is None for r in responses[:t]):
        raise ValueError(f"a step before {t} has no response in this format")
    history = [Step.model_construct(screenshot=screens[i], response=responses[i])
               for i in range(t)]
    return Context.model_construct(instruction=episode.task.instruction, history=history,
                                   screenshot=screens[t], screen=screen_of(episode))


def estimate_text_tokens(text: str) -> int:
    """A tokenizer-free upper estimate: three UTF-8 bytes per token."""
    return len(text.encode()) // 3 + 1


class Images:
    """Image blocks of rendered requests, keyed by the SHA256 of the bytes the model sees.

    A rendered data URL is decoded once (the format hands back the same string while its encode
    cache holds it); images not seen before wait in :attr:`new` until the caller stores them.
    """

    def __init__(self, recent: int = 256):
        self.seen: set[str] = set()
        self.new: dict[str, bytes] = {}
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._recent = recent

    def key(self, url: str) -> str:
        key = self._keys.get(url)
        if key is None:
            key = hashlib.sha256(base64.b64decode(url[len(DATA_URL):])).hexdigest()
            self._keys[url] = key
            if len(self._keys) > self._recent:
                self._keys.popitem(last=False)
        if key not in self.seen:
            self.seen.add(key)
            self.new[key] = base64.b64decode(url[len(DATA_URL):])
        return key

    def take_new(self) -> dict[str, bytes]:
        new, self.new = self.new, {}
        return new

    def drop_new(self) -> None:
        """Forget the images first seen by an expansion that was given up."""
        self.seen.difference_update(self.new)
        self.new = {}


def to_blocks(messages: list[Message], images: Images) -> tuple[list[Message], list[str]]:
    """TRL blocks from OpenAI messages: each ``image_url`` becomes ``{"type": "image"}``."""
    out, keys = [], []
    for message in messages:
        content = []
        for block in message["content"]:
            if block["type"] == "image_url":
                keys.append(images.key(block["image_url"]["url"]))
                content.append({"type": "image"})
            else:
                content.append({"type": "text", "text": block["text"]})
        out.append({"role": message["role"], "content": content})
    return out, keys


def count_tokens(messages: list[Message], per_image: int, count_text: TextCounter) -> int:
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD
        for block in message["content"]:
            total += per_image if block["type"] in ("image", "image_url") else count_text(
                block["text"])
    return total


def fit_budget(fmt: AgentFormat, ctx: Context, completion: list[Message], budget: int | None,
               per_image: int, count_text: TextCounter) -> tuple[AgentFormat, list[Message], int]:
    """Render with the most history screenshots that keep the sample within ``budget`` tokens
    (the oldest screenshots go first); raises ValueError when even one does not fit."""
    tail = count_tokens(completion, per_image, count_text)
    for n in range(fmt.history_n, 0, -1):
        student = fmt.replace(history_n=n)
        messages = student.render(ctx)
        tokens = count_tokens(messages, per_image, count_text) + tail
        if budget is None or tokens <= budget:
            return student, messages, tokens
    raise ValueError(f"a step exceeds the {budget}-token budget even with one screenshot")


def completion_of(fmt: AgentFormat, response: str) -> list[Message]:
    return [{"role": "assistant", "content": [{"type": "text",
                                               "text": fmt.assistant_text(response)}]}]


def expand_episode(episode: EpisodeRecord, screens: list[bytes], fmt: AgentFormat,
                   images: Images, budget: int | None = None,
                   count_text: TextCounter = estimate_text_tokens) -> Iterator[Sample]:
    """One sample per step with valid actions; ``screens[i]`` is step i's screenshot.

    Raises ValueError when the episode cannot be written in ``fmt`` (a step with no actions to
    re-emit in another format, or a step over the token budget even with one screenshot)."""
    responses = student_responses(episode, fmt)
    per_image = fmt.image_tokens(screen_of(episode))
    for t, step in enumerate(episode.steps):
        if step.parse_error is not None:
            continue  # kept as history (as the rollout had it), never a training target
        if responses[t] is None:
            raise ValueError(f"step {t} cannot be written in {fmt.name}")
        completion = completion_of(fmt, responses[t])
        student, messages, tokens = fit_budget(fmt, context_at(episode, t, responses, screens),
                                               completion, budget, per_image, count_text)
        prompt, keys = to_blocks(messages, images)
        yield Sample(episode=episode.id, step=t, prompt=prompt, completion=completion,
                     images=keys, history_n=student.history_n, tokens=tokens)


def first_difference(expected: Any, actual: Any, path: str = "$") -> str | None:
    """The JSON path of the first place where two JSON-like values differ (None: equal)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            if key not in expected or key not in actual:
                return f"{path}.{key}"
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (a, b) in enumerate(zip(expected, actual)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        shorter = min(len(expected), len(actual))
        return None if len(expected) == len(actual) else f"{path}[{shorter}]"
    return None if type(expected) is type(actual) and expected == actual else path


def to_messages(prompt: list[Message], urls: list[str]) -> list[Message]:
    """A sample's prompt back as the OpenAI request messages, given each image's data URL."""
    images = iter(urls)
    out = []
    for message in prompt:
        content = []
        for block in message["content"]:
            if block["type"] == "image":
                content.append({"type": "image_url", "image_url": {"url": next(images)}})
            else:
                content.append({"type": "text", "text": block["text"]})
        out.append({"role": message["role"], "content": content})
    return out
