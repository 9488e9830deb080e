"""Versioned records of every artifact on disk: tasks and verdicts, the steps and results of
episodes, goal proposals, run manifests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from cua.actions import Action
from cua.envspec import EnvSpec

# success/failure: scored by the task's evaluator; unverified: no evaluator; infeasible: the judge
# refused it; error: it could not run to a score (a dead endpoint, a crashed app or desktop).
Outcome = Literal["success", "failure", "unverified", "infeasible", "error"]
OUTCOMES: tuple[str, ...] = Outcome.__args__
SCHEMA_VERSION = 2  # 2: episodes carry their evaluation, setup log and final screenshot


class Task(BaseModel):
    """A task grounded in one content file on a desktop of one env."""

    id: str
    instruction: str
    app: str                      # the app the task is done in (calc, impress, writer, …)
    content: str                  # the content file's name in the desktop's home
    family: str | None = None     # template family (scripted expert); None when a model proposed it
    params: dict[str, Any] = Field(default_factory=dict)  # the family's parameters


class Verdict(BaseModel):
    """The precondition judge's answer: is this task feasible on this desktop and content?"""

    feasible: bool
    reason: str


class SettleReport(BaseModel):
    """How the screen settled after an action."""

    settled: bool      # False: the cap was reached while the screen still changed
    changed: bool      # whether the screen differed at all from the frame before the action
    waited_s: float
    frames: int
    min_wait_s: float = 0.0  # the minimum wait it kept (the apps running decide it by default)
    stale: bool | None = None  # the settled screen changed within the policy's `recheck_s`


class MetricResult(BaseModel):
    """One metric's outcome: its score, why it fell short, or the error that stopped it (score 0)."""

    func: str
    score: float
    reason: str = ""
    error: str | None = None


class EvalResult(BaseModel):
    """The task's score and each metric evaluated (an "and" stops at the first 0, an "or" at the
    first 1); `error` joins the metrics' errors."""

    score: float
    details: list[MetricResult]
    error: str | None = None

    def describe(self) -> str:
        """One line: the score, then each metric's reason, error or score."""
        parts = [f"score {self.score:g}"]
        parts += [f"{d.func}: {d.error or d.reason or d.score}" for d in self.details]
        return "; ".join(parts)


class ActionResult(BaseModel):
    action: Action
    ok: bool
    error: str | None = None
    seconds: float
    settle: SettleReport | None = None


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
    discarded: list[ModelCall] = []    # earlier replies of this step the loop could not parse
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
    outcome: Outcome
    terminated: bool = False           # the agent said finished/call_user
    truncated: str | None = None       # why the loop was cut: max_steps, parse_errors
    last_action: Literal["DONE", "FAIL"] | None = None  # what OSWorld's scorer is told
    setup_log: list[str] = []          # the setup and postconfig operations as they ran
    final_screenshot: str | None = None  # the screen after the agent's last step
    evaluation: EvalResult | None = None  # the evaluator's score (success means score 1)
    error: str | None = None
    started: float = 0.0
    seconds: float = 0.0
    setup_seconds: float = 0.0         # reset and setup, until the desktop was ready
    set_up_ahead: bool = False         # on a standby desktop while the episode before ran
                                       # (setup_seconds: what the episode still waited)


class RunManifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    created: float
    recipe: dict[str, Any]
    versions: dict[str, str]
    envs: dict[str, EnvSpec]
    content: list[ContentRef]
    rejected_content: dict[str, str] = {}   # file -> why it was refused (corrupt, unsupported)
