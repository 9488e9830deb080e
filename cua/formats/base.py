"""The agent-format contract: what one student model sees at a step and how its answer maps back.

Rollout, SFT expansion and evaluation all go through an :class:`AgentFormat`, so the request sent
at inference and the prompt of a training sample are built by the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, PositiveInt

from cua.actions import Action


class Step(BaseModel):
    """One past step as a format needs it."""

    model_config = ConfigDict(extra="forbid")

    screenshot: bytes | None = None  # PNG the model saw at that step (None if not kept)
    response: str  # the assistant's full raw response text at that step


class Context(BaseModel):
    """What a format renders into one request: the task, steps 0..t-1, the current screen."""

    model_config = ConfigDict(extra="forbid")

    instruction: str
    history: list[Step] = []  # oldest first
    screenshot: bytes  # current screenshot (PNG)
    screen: tuple[PositiveInt, PositiveInt]  # real screen (width, height)


class LoopPolicy(BaseModel):
    """How the step loop drives a format's model, as the reference run of its family does. The
    defaults are cua's own loop: one request per step, an unreadable reply stays in the history
    (and counts against the parse-error budget), the actions before finished/call_user run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sampling: dict[str, Any] = {}        # request parameters sent with every request
    attempts: int = 1                    # requests per step while the reply cannot be parsed
                                         # (above 1: unparsed replies are dropped, and a step
                                         # whose attempts all fail ends the episode)
    retry_sampling: dict[str, Any] = {}  # request parameters of the second and later attempts
    call_user_waits: int = 0             # call_user answered by a wait this often per episode
    first_control_decides: bool = False  # a step's first finished/wait/call_user acts alone
    fail_at_max_steps: bool = False      # the last allowed step answers FAIL instead of acting


class ParseError(Exception):
    """A model response could not be turned into valid canonical actions; the message says why."""


class Parsed(BaseModel):
    """A parsed response: canonical actions in absolute real-screen pixels, validated."""

    model_config = ConfigDict(extra="forbid")

    thought: str
    actions: list[Action]
    raw: str


Message = dict[str, Any]


class AgentFormat(Protocol):
    """How one family of student models is prompted and answers: everything rollout, expansion
    and the dataset need, so a new student format is one new module."""

    name: ClassVar[str]
    history_n: int  # screenshots per request: the current one and history_n - 1 past ones
    loop: LoopPolicy  # how the step loop around this format behaves

    @classmethod
    def processor_options(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Format options (pixel bounds, …) from a model dir's loaded processor config."""
        ...

    def options(self) -> dict[str, Any]:
        """The options this format was built with (recorded with datasets)."""
        ...

    def replace(self, **options: Any) -> AgentFormat:
        """The same format with some options changed (e.g. fewer history screenshots)."""
        ...

    def image_tokens(self, screen: tuple[int, int]) -> int:
        """Tokens one screenshot of a `screen`-sized display costs in the model's context."""
        ...

    def render(self, ctx: Context) -> list[Message]:
        """OpenAI chat messages for this step; every content is a list of text/image_url blocks."""
        ...

    def parse(self, text: str, screen: tuple[int, int]) -> Parsed:
        """Canonical actions from a raw response; raises :class:`ParseError` and nothing else."""
        ...

    def unparse(self, thought: str, actions: list[Action], screen: tuple[int, int]) -> str:
        """The response text this model would give for canonical actions (a training target)."""
        ...

    def assistant_text(self, response: str) -> str:
        """A raw response as it appears in an assistant turn (history turns, training targets)."""
        ...

    def image_size(self, screen: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of the screenshots sent to the model for this screen."""
        ...

    def grid(self, screen: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of the coordinate space the model answers in for this screen."""
        ...
