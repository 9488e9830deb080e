"""The three roles played by one VLM: goal generator, precondition judge, executor."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from cua.envspec import EnvSpec
from cua.models import ChatModel
from cua.records import ModelCall
from cua.summary import ContentSummary
from cua.tasks import Task, Verdict

PROMPTS = Path(__file__).resolve().parent.parent / "tasks" / "prompts"
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class RoleError(ValueError):
    """A role's reply could not be understood (recorded; never executed)."""


@dataclass
class Observation:
    """What an executor sees at one step."""

    screenshot: bytes          # PNG of the real screen
    windows: list[str]         # window titles (the scripted expert reads dialogs from them)
    screen: tuple[int, int]


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
    return [{"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]},
            {"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


class ModelGoalGenerator:
    def __init__(self, model: ChatModel, template: Path = PROMPTS / "goal.md"):
        self.model, self.template = model, Template(template.read_text())

    def propose(self, goal_id: str, env: EnvSpec, summary: ContentSummary, screenshot: bytes,
                n: int, put) -> tuple[list[Task], ModelCall, str | None]:
        prompt = self.template.substitute(_context(env, summary), n=n)
        call = self.model.complete(_user_turn(prompt, screenshot), "goal", put)
        if call.error:
            return [], call, call.error
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
                tasks.append(Task(id=f"{goal_id}-{len(tasks)}", instruction=item["instruction"],
                                  app=app, content=summary.name))
            return tasks, call, None if tasks else "the goal generator proposed no task"
        except RoleError as exc:
            return [], call, str(exc)


class ModelJudge:
    def __init__(self, model: ChatModel, template: Path = PROMPTS / "judge.md"):
        self.model, self.template = model, Template(template.read_text())

    def judge(self, task: Task, env: EnvSpec, summary: ContentSummary, screenshot: bytes,
              put) -> tuple[Verdict, ModelCall]:
        prompt = self.template.substitute(_context(env, summary), instruction=task.instruction)
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


class ModelExecutor:
    """Renders the step's context in the agent format and asks the model for the next step."""

    def __init__(self, model: ChatModel, agent_format):
        self.model, self.format = model, agent_format

    def start(self, task: Task) -> None:
        """Nothing to prepare: the model sees everything in each step's context."""

    def act(self, context, observation: Observation, put) -> tuple[str, ModelCall | None]:
        call = self.model.complete(self.format.render(context), "executor", put)
        return call.text or "", call
