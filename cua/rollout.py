"""The executor loop: observe, ask the executor, parse, act; until finished or cut."""

from __future__ import annotations

import time

from cua.actions import CallUser, Finished
from cua.formats import Context, ParseError, Step
from cua.records import StepRecord
from cua.roles import Observation
from cua.store import ScreenBuffer
from cua.tasks import Task


def rollout(desktop, task: Task, executor, agent_format, screens: ScreenBuffer, max_steps: int,
            parse_error_budget: int) -> tuple[list[StepRecord], bool, str | None]:
    """Run `task` on a ready desktop. Returns the steps, whether the agent terminated the
    episode itself (finished/call_user), and why it was truncated otherwise."""
    spec = desktop.spec
    screen = (spec.screen.width, spec.screen.height)
    executor.start(task)
    history: list[Step] = []
    steps: list[StepRecord] = []
    parse_errors = 0
    for index in range(max_steps):
        t0 = time.monotonic()
        png = desktop.screenshot_png()
        windows = [w.title for w in desktop.windows()]
        t1 = time.monotonic()
        context = Context(instruction=task.instruction, history=history, screenshot=png,
                          screen=screen)
        response, call = executor.act(context, Observation(png, windows, screen), screens.put)
        t2 = time.monotonic()
        record = StepRecord(index=index, screenshot=screens.put(png), windows=windows,
                            call=call, response=response,
                            seconds={"observe": t1 - t0, "model": t2 - t1})
        steps.append(record)
        history.append(Step(screenshot=png, response=response))
        if call is not None and call.error:
            return steps, False, f"model_error: {call.error}"
        try:
            parsed = agent_format.parse(response, screen)
        except ParseError as exc:
            record.parse_error = str(exc)
            parse_errors += 1
            if parse_errors >= parse_error_budget:
                return steps, False, "parse_errors"
            continue
        record.thought, record.actions = parsed.thought, parsed.actions
        stop = next((i for i, a in enumerate(parsed.actions)
                     if isinstance(a, (Finished, CallUser))), None)
        todo = parsed.actions if stop is None else parsed.actions[:stop]
        if todo:
            record.results = desktop.execute(todo).results
        record.seconds["execute"] = time.monotonic() - t2
        if stop is not None:
            return steps, True, None
    return steps, False, "max_steps"
