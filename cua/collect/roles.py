"""The three roles — goal generator, precondition judge, agent (the executor) — as small protocols,
and their implementations by one VLM behind an OpenAI-compatible endpoint. The scripted expert
(`cua.collect.expert.scripted`) implements the same protocols with no model."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Protocol

from cua.collect.client import ChatModel
from cua.content.summary import ContentSummary, summarize
from cua.envspec import EnvSpec
from cua.formats import AgentFormat, Context
from cua.records import ModelCall, Task, Verdict

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class RoleError(ValueError):
    """A role's reply could not be understood (recorded; never executed)."""


Put = Callable[[bytes], str]  # stores a screenshot, returns its digest


@dataclass
class Observation:
    """What the agent sees at one step."""

    screenshot: bytes          # PNG of the real screen
    windows: list[str]         # window titles (the scripted expert reads dialogs from them)
    screen: tuple[int, int]


@dataclass
class Grounding:
    """What a task is grounded in: a content file on a desktop of an env. `screenshot()` resets a
    desktop with the file and returns its screen (only the roles that look call it)."""

    id: str
    env: EnvSpec
    path: Path
    kind: str
    screenshot: Callable[[], bytes]


@dataclass
class Proposal:
    tasks: list[Task] = field(default_factory=list)
    call: ModelCall | None = None
    error: str | None = None


class GoalGenerator(Protocol):
    def propose(self, grounding: Grounding, n: int, put: Put) -> Proposal:
        """Up to `n` tasks grounded in the file (ids `{grounding.id}-{i}`)."""
        ...


class Judge(Protocol):
    def judge(self, task: Task, grounding: Grounding, screenshot: bytes,
              put: Put) -> tuple[Verdict, ModelCall | None]:
        """Whether the task is feasible on the ready desktop, before any rollout."""
        ...


class Agent(Protocol):
    name: str   # recorded with each episode: the model, or "scripted"

    def start(self, task: Task) -> None:
        """Prepare for a new episode of `task`."""
        ...

    def act(self, context: Context, observation: Observation, put: Put,
            attempt: int = 0) -> tuple[str, ModelCall | None]:
        """The raw response in the agent format for this step, and the model call behind it;
        `attempt` counts the earlier replies of this step that could not be parsed."""
        ...


def extract_json(text: str) -> Any:
    """The first JSON value in a reply (fenced or bare)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        starts = [i for i in (candidate.find("["), candidate.find("{")) if i >= 0]
        if not starts:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(candidate[min(starts):])
            return value
        except json.JSONDecodeError:
            continue
    raise RoleError(f"no JSON in the reply: {text[:200]!r}")


def _context(env: EnvSpec, summary: ContentSummary) -> dict[str, str]:
    return {"screen": f"{env.screen.width}x{env.screen.height}",
            "apps": ", ".join(a.app for a in env.apps), "summary": summary.as_text(),
            "app_names": ", ".join(a.app for a in env.apps)}


def _user_turn(text: str, screenshot: bytes) -> list[dict]:
    url = "data:image/png;base64," + base64.b64encode(screenshot).decode()
    system = [{"type": "text", "text": "You are a helpful assistant."}]
    return [{"role": "system", "content": system},
            {"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]




class ModelGoalGenerator:
    def __init__(self, model: ChatModel, template: Path = PROMPTS / "goal.md"):
        self.model, self.template = model, Template(template.read_text())

    def propose(self, grounding: Grounding, n: int, put: Put) -> Proposal:
        env, summary = grounding.env, summarize(grounding.path)
        prompt = self.template.substitute(_context(env, summary), n=n)
        call = self.model.complete(_user_turn(prompt, grounding.screenshot()), "goal", put)
        if call.error:
            return Proposal(call=call, error=call.error)
        try:
            items = extract_json(call.text)
            if not isinstance(items, list):
                raise RoleError("the goal generator did not answer a JSON array")
            apps = {a.app for a in env.apps}
            tasks = []
            for item in items[:n]:
                if not isinstance(item, dict) or not str(item.get("instruction", "")).strip():
                    raise RoleError(f"a proposal lacks an instruction: {item!r}"[:200])
                app = item.get("app") if item.get("app") in apps else env.apps[0].app
                tasks.append(Task(id=f"{grounding.id}-{len(tasks)}",
                                  instruction=item["instruction"], app=app, content=summary.name))
            return Proposal(tasks, call, None if tasks else "the goal generator proposed no task")
        except RoleError as exc:
            return Proposal(call=call, error=str(exc))


class ModelJudge:
    def __init__(self, model: ChatModel, template: Path = PROMPTS / "judge.md"):
        self.model, self.template = model, Template(template.read_text())

    def judge(self, task: Task, grounding: Grounding, screenshot: bytes,
              put: Put) -> tuple[Verdict, ModelCall]:
        prompt = self.template.substitute(_context(grounding.env, summarize(grounding.path)),
                                          instruction=task.instruction)
        call = self.model.complete(_user_turn(prompt, screenshot), "judge", put)
        if call.error:
            return Verdict(feasible=False, reason=f"judge unavailable: {call.error}"), call
        try:
            answer = extract_json(call.text)
            if not isinstance(answer, dict) or not isinstance(answer.get("feasible"), bool):
                raise RoleError("the judge's JSON lacks a boolean 'feasible'")
            return Verdict(feasible=answer["feasible"],
                           reason=str(answer.get("reason", ""))[:500]), call
        except RoleError as exc:  # an unreadable verdict never lets a task through
            return Verdict(feasible=False, reason=f"unreadable verdict: {exc}"), call


class ModelAgent:
    """Renders the step's context in the agent format and asks the model for the next step."""

    def __init__(self, model: ChatModel, agent_format: AgentFormat):
        self.model, self.format, self.name = model, agent_format, model.config.name

    def start(self, task: Task) -> None:
        """Nothing to prepare: the model sees everything in each step's context."""

    def act(self, context: Context, observation: Observation, put: Put,
            attempt: int = 0) -> tuple[str, ModelCall]:
        """Every request carries the format's loop sampling; a retry its retry sampling."""
        loop = self.format.loop
        call = self.model.complete(self.format.render(context), "executor", put,
                                   defaults=loop.sampling,
                                   overrides=loop.retry_sampling if attempt else {})
        return call.text or "", call
