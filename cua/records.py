"""Versioned records of a collection run on disk: manifest, goal proposals, episodes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from cua.actions import Action
from cua.desktop.records import ActionResult
from cua.envspec import EnvSpec
from cua.tasks import CheckResult, Task, Verdict

SCHEMA_VERSION = 1


class ModelCall(BaseModel):
    """One call to a model endpoint: the exact request body (images as `screen://SHA256`
    references into the run's screenshot store) and the raw response."""

    role: Literal["goal", "judge", "executor"]
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    text: str | None = None
    error: str | None = None
    seconds: float = 0.0
    attempts: int = 0


class ContentRef(BaseModel):
    name: str
    kind: str
    sha256: str


class StepRecord(BaseModel):
    index: int
    screenshot: str                    # SHA256 of the screen PNG this step observed
    windows: list[str] = []            # window titles at that moment
    call: ModelCall | None = None      # None when the scripted expert acted
    response: str                      # the raw response text in the agent format
    thought: str = ""
    actions: list[Action] = []
    parse_error: str | None = None
    results: list[ActionResult] = []
    seconds: dict[str, float] = Field(default_factory=dict)  # model, execute, observe


class GoalRecord(BaseModel):
    """What the goal generator proposed for one content file on one env."""

    schema_version: int = SCHEMA_VERSION
    id: str
    env: str
    content: ContentRef
    screenshot: str | None = None
    tasks: list[Task] = []
    call: ModelCall | None = None
    error: str | None = None


class EpisodeRecord(BaseModel):
    schema_version: int = SCHEMA_VERSION
    id: str
    goal_id: str
    env: EnvSpec                       # the full spec (apps, dialogs, settle policy) as run
    content: ContentRef
    task: Task
    model: str
    agent_format: str
    agent_format_options: dict[str, Any] = {}   # e.g. the student processor's pixel bounds
    verdict: Verdict | None = None
    judge_call: ModelCall | None = None
    judge_screenshot: str | None = None
    steps: list[StepRecord] = []
    outcome: Literal["success", "failure", "unverified", "infeasible", "error"]
    terminated: bool = False           # the agent said finished/call_user
    truncated: str | None = None       # why the loop was cut: max_steps, parse_errors
    check: CheckResult | None = None
    error: str | None = None
    started: float = 0.0
    seconds: float = 0.0


class RunManifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    created: float
    recipe: dict[str, Any]
    versions: dict[str, str]
    envs: dict[str, EnvSpec]
    content: list[ContentRef]
    rejected_content: dict[str, str] = {}   # file -> why it was refused (corrupt, unsupported)
