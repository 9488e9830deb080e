"""One episode on one desktop, the same for collection, `cua eval` and `cua eval check`: put the
desktop into the task's initial state, let the judge look (collection), let the agent act, run the
postconfig (save the document), score with the task's evaluator."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from cua.actions import Action, CallUser, Finished, Wait
from cua.collect.roles import Agent, Observation, Put
from cua.collect.store import ScreenBuffer
from cua.desktop.ops import Op, home_path, prepare, run_ops
from cua.envspec import EnvSpec
from cua.formats import AgentFormat, Context, ParseError, Step
from cua.recipes import AgentSettings
from cua.records import (
    ContentRef,
    EpisodeRecord,
    EvalResult,
    ModelCall,
    StepRecord,
    Task,
    Verdict,
)
from cua.scoring import evaluate

JudgeCall = Callable[[bytes, Put], tuple[Verdict, ModelCall | None]]


class EpisodeError(RuntimeError):
    """The episode could not run to a score: a dead endpoint, a crashed app or X server."""


class Harness(Protocol):
    """How an episode's desktop is put into the task's initial state, and how the end state is
    scored (a task's postconfig, then its evaluator)."""

    def setup(self, desktop, env: EnvSpec) -> list[str]:
        """Reset `desktop` with `env` into the initial state; a log line per step."""

    def score(self, desktop, files: Path, last_action: str | None
              ) -> tuple[list[str], EvalResult | None]:
        """Postconfig then evaluation: its log and the result (None: the task has no evaluator,
        the outcome is 'unverified'). `last_action` is the agent's final action (OSWorld: "DONE",
        "FAIL"); files the evaluator reads are kept in `files`."""


@dataclass
class OpsHarness:
    """cua's own steps (upload, open, save, …) and scorer, for tasks of cua's own families."""

    setup_ops: list[Op]
    postconfig: list[Op] = field(default_factory=list)
    evaluator: Any = None                       # an OSWorld-schema evaluator config
    task_dir: Path = Path(".")                  # where the evaluator's local files resolve

    def setup(self, desktop, env: EnvSpec) -> list[str]:
        return prepare(desktop, env, self.setup_ops)

    def score(self, desktop, files: Path, last_action: str | None
              ) -> tuple[list[str], EvalResult | None]:
        log = run_ops(desktop, self.postconfig)
        if self.evaluator is None:
            return log, None
        return log, evaluate(self.evaluator, lambda path: desktop.download_settled(
            home_path(path)), self.task_dir, files)


@dataclass
class EpisodeSpec:
    """What an episode runs: the task as the agent sees it, its env, and its harness."""

    task: Task
    env: EnvSpec
    content: ContentRef
    group: str                                  # the goal (collection) or domain (eval) it is in
    harness: Harness


@dataclass
class Prepared:
    """A desktop set up for an episode ahead of its turn (or the error that stopped that)."""

    desktop: Any
    setup_log: list[str] = field(default_factory=list)
    error: Exception | None = None
    waited_s: float = 0.0  # how long the episode waited for what was left of the set-up


def run_episode(desktop, spec: EpisodeSpec, agent: Agent | None, agent_format: AgentFormat,
                settings: AgentSettings, files: Path, judge: JudgeCall | None = None,
                prepared: Prepared | None = None) -> tuple[EpisodeRecord, dict[str, bytes]]:
    """Run one episode; with no `agent`, score the initial state. Returns the record (outcome
    success, failure, unverified, infeasible or error) and the screenshots it names. Files the
    evaluator reads are kept in `files`. With `prepared`, `desktop` was set up ahead (its
    set-up's seconds are those the episode waited). Never raises for a fault of the desktop or
    the model."""
    screens, started = ScreenBuffer(), time.time()
    record = EpisodeRecord(id=spec.task.id, goal_id=spec.group, env=spec.env,
                           content=spec.content, task=spec.task, outcome="error",
                           model=agent.name if agent else "", agent_format=agent_format.name,
                           agent_format_options=settings.agent_format_options, started=started)
    try:
        if prepared is None:
            record.setup_log = spec.harness.setup(desktop, spec.env)
        elif prepared.error is not None:
            raise prepared.error
        else:
            record.setup_log = prepared.setup_log
        record.setup_seconds = prepared.waited_s if prepared else time.time() - started
        record.set_up_ahead = prepared is not None
        if judge is not None:
            png = desktop.screenshot_png()
            record.judge_screenshot = screens.put(png)
            record.verdict, record.judge_call = judge(png, screens.put)
            if record.judge_call is not None and record.judge_call.error:
                raise EpisodeError(f"the judge's endpoint failed: {record.judge_call.error}")
        if record.verdict is not None and not record.verdict.feasible:
            record.outcome = "infeasible"
        else:
            if agent is not None:
                done = rollout(desktop, spec.task, agent, agent_format, screens, settings)
                record.steps, record.terminated = done.steps, done.terminated
                record.truncated, record.last_action = done.truncated, done.last_action
                if (record.truncated or "").startswith("model_error"):
                    raise EpisodeError(f"the agent's endpoint failed: {record.truncated}")
            record.final_screenshot = screens.put(desktop.screenshot_png())
            health = desktop.health()
            if not health.ok:
                down = [app for app, up in health.apps.items() if not up] or ["X server"]
                raise EpisodeError(f"{', '.join(down)} died during the episode")
            log, record.evaluation = spec.harness.score(desktop, files, record.last_action)
            record.setup_log += log
            if record.evaluation is None:
                record.outcome = "unverified"
            else:
                record.outcome = "success" if record.evaluation.score >= 1 else "failure"
    except Exception as exc:  # a crashed app, a dead desktop or endpoint: recorded with its reason
        record.error = f"{type(exc).__name__}: {exc}"
        record.outcome = "error"
    record.seconds = time.time() - started
    return record, screens.screens


@dataclass
class Rollout:
    """What the agent did: its steps, whether it ended the episode itself (finished/call_user),
    why the loop cut it otherwise (max_steps, parse_errors, model_error: …), and its last action
    as OSWorld's scorer hears it ("DONE", "FAIL" or None)."""

    steps: list[StepRecord] = field(default_factory=list)
    terminated: bool = False
    truncated: str | None = None
    last_action: Literal["DONE", "FAIL"] | None = None


def rollout(desktop, task: Task, agent: Agent, agent_format: AgentFormat, screens: ScreenBuffer,
            settings: AgentSettings) -> Rollout:
    """Observe, ask the agent, parse, act; until it finishes or the episode is cut, the way the
    format's loop policy says (cua's loop, or the reference run of the format's family)."""
    screen = (desktop.spec.screen.width, desktop.spec.screen.height)
    policy = agent_format.loop
    agent.start(task)
    history: list[Step] = []
    done = Rollout()
    parse_errors, waits_left = 0, policy.call_user_waits
    seen = None  # the screen the last actions request answered with: no request to look again
    for index in range(settings.max_steps):
        t0 = time.monotonic()
        png = seen.png if seen else desktop.screenshot_png()
        windows = [w.title for w in (seen.windows if seen else desktop.windows())]
        seen = None
        t1 = time.monotonic()
        context = Context(instruction=task.instruction, history=history, screenshot=png,
                          screen=screen)
        record = StepRecord(index=index, screenshot=screens.put(png), windows=windows,
                            response="", seconds={"observe": t1 - t0})
        done.steps.append(record)
        parsed = None
        for attempt in range(policy.attempts):
            if record.call is not None:
                record.discarded.append(record.call)  # an unparsed reply: never history
            record.response, record.call = agent.act(
                context, Observation(png, windows, screen), screens.put, attempt)
            if record.call is not None and record.call.error:
                record.seconds["model"] = time.monotonic() - t1
                done.truncated = f"model_error: {record.call.error}"
                return done
            try:
                parsed = agent_format.parse(record.response, screen)
                record.parse_error = None
                break
            except ParseError as exc:
                record.parse_error = str(exc)
        t2 = time.monotonic()
        record.seconds["model"] = t2 - t1
        if parsed is None:
            if policy.attempts > 1:  # the reference run gives up on the episode: DONE
                done.truncated, done.last_action = "parse_errors", "DONE"
                return done
            history.append(Step(screenshot=png, response=record.response))
            parse_errors += 1
            if parse_errors >= settings.parse_error_budget:
                done.truncated = "parse_errors"
                return done
            continue
        history.append(Step(screenshot=png, response=record.response))
        record.thought, record.actions = parsed.thought, parsed.actions
        todo, end = _plan(parsed.actions, policy.first_control_decides)
        if isinstance(end, CallUser) and waits_left > 0:
            waits_left -= 1
            todo, end = [Wait()], None
        last_step = index == settings.max_steps - 1
        if end is None and last_step and policy.fail_at_max_steps and not _waits(todo):
            done.truncated, done.last_action = "max_steps", "FAIL"
            return done
        if todo:
            report = desktop.execute(todo, observe=True)
            record.results, seen = report.results, report.screen
        record.seconds["execute"] = time.monotonic() - t2
        if end is not None:
            done.terminated = True
            done.last_action = "DONE" if isinstance(end, Finished) else "FAIL"
            return done
    done.truncated = "max_steps"
    return done


def _plan(actions: list[Action], first_control_decides: bool
          ) -> tuple[list[Action], Finished | CallUser | None]:
    """The actions to run and the one that ends the episode: cua's loop runs the actions before
    the first finished/call_user; the reference run acts on a step's first finished, wait or
    call_user alone and drops the rest."""
    if first_control_decides:
        control = next((a for a in actions if isinstance(a, (Finished, CallUser, Wait))), None)
        if control is not None:
            return ([], control) if isinstance(control, (Finished, CallUser)) else ([control], None)
    stop = next((i for i, a in enumerate(actions) if isinstance(a, (Finished, CallUser))), None)
    return (actions, None) if stop is None else (actions[:stop], actions[stop])


def _waits(actions: list[Action]) -> bool:
    """A step that only waits (the reference run's WAIT), which the step limit does not fail."""
    return len(actions) == 1 and isinstance(actions[0], Wait)
