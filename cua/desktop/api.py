"""Typed messages between the control server and its clients."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cua.actions import Action
from cua.envspec import EnvSpec
from cua.records import ActionResult, SettleReport

MAX_ACTIONS = 20  # per execute request: each settles, so a request stays within seconds


class WindowInfo(BaseModel):
    id: str
    pid: int
    wm_class: str
    title: str


class ResetRequest(BaseModel):
    env: EnvSpec
    files: list[str] = []   # paths in the desktop's home (uploaded first), opened by their app


class ResetReport(BaseModel):
    display: str
    x_restarted: bool
    windows: list[WindowInfo]
    opened: dict[str, str]  # file -> app
    seconds: float
    settle: SettleReport


class OpenRequest(BaseModel):
    path: str
    app: str | None = None  # default: the env's app for the file's kind


class LaunchRequest(BaseModel):
    app: str


class ExecuteRequest(BaseModel):
    actions: list[Action] = Field(max_length=MAX_ACTIONS)
    settle: bool = True


class ExecuteReport(BaseModel):
    results: list[ActionResult]
    seconds: float


class Health(BaseModel):
    ok: bool
    x_server: bool
    apps: dict[str, bool] = Field(default_factory=dict)  # app -> process and window alive
    display: str | None = None
    env: str | None = None
