"""Typed messages between the control server and its clients."""

from __future__ import annotations

import base64

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
    observe: bool = False  # also answer the screen after the last action: one request per step


class Screen(BaseModel):
    """The screen as a PNG (base64 in JSON) and the windows on it."""

    png_base64: str
    windows: list[WindowInfo]

    @classmethod
    def of(cls, png: bytes, windows: list[WindowInfo]) -> Screen:
        return cls(png_base64=base64.b64encode(png).decode("ascii"), windows=windows)

    @property
    def png(self) -> bytes:
        return base64.b64decode(self.png_base64)


class ExecuteReport(BaseModel):
    results: list[ActionResult]
    seconds: float
    screen: Screen | None = None  # with `observe`: the screen once the actions have settled


class Health(BaseModel):
    ok: bool
    x_server: bool
    apps: dict[str, bool] = Field(default_factory=dict)  # app -> process and window alive
    display: str | None = None
    env: str | None = None
