"""Desktop environment specs (`cua/envs/*.yaml`): which apps start, what content they take, the screen."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

AppName = Literal["calc", "impress", "writer", "browser", "editor", "terminal", "files"]

# Content kinds (see cua.content.KINDS) each app can open.
# In this order an app opens a kind that no app of the env takes: text in the editor.
APP_CONTENT: dict[str, tuple[str, ...]] = {
    "calc": ("xlsx", "ods", "csv"),
    "impress": ("pptx", "odp"),
    "browser": ("html", "pdf"),
    "editor": ("txt", "csv", "html"),
    "writer": ("docx", "odt", "txt"),
    "terminal": (),
    "files": (),
}


ENVS_DIR = Path(__file__).resolve().parent / "envs"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Screen(Frozen):
    width: int = Field(1920, ge=320, le=7680)
    height: int = Field(1080, ge=240, le=4320)
    depth: Literal[16, 24] = 24


class SettlePolicy(Frozen):
    """When the screen counts as settled after an action: a frame difference under `threshold`
    (fraction of sampled pixels that changed) for `quiet_s`, checked every `interval_s` (with
    `use_damage`, only after X reports a draw, at most that often), waiting
    at least `min_wait_s` (by default, as the apps running then need:
    `cua.desktop.settle.MIN_WAIT_S`) and at most `timeout_s`, with the apps' processes idle
    meanwhile."""

    interval_s: float = Field(0.02, gt=0, le=1)
    quiet_s: float = Field(0.06, ge=0, le=5)
    min_wait_s: float | None = Field(None, ge=0, le=5)
    timeout_s: float = Field(3.0, gt=0, le=60)
    threshold: float = Field(0.0005, ge=0, lt=1)
    cpu_idle: float = Field(0.15, gt=0)  # cores the apps may use and still count as idle
    wait_action_s: float = Field(1.0, ge=0, le=60)  # how long `wait()` pauses before settling
    use_damage: bool = True  # look at a frame only after X's DAMAGE reports a draw
    # a measurement of the policy, not part of it: after an action settles, wait this long more
    # and report whether the screen changed meanwhile (`SettleReport.stale`); 0 is off
    recheck_s: float = Field(0.0, ge=0, le=5)


class Dialogs(Frozen):
    """Dialogs a user meets in OSWorld's VM. First-run noise (tip of the day, release notes,
    recovery, donation) is always hidden; these are shown by default so students learn them."""

    keep_format: Literal["show", "hide"] = "show"


class Office(Frozen):
    autocomplete: bool = True  # Calc's AutoInput completes typed text from the column
    autocorrect: bool = True   # "teh" -> "the", capitalisation, …


class AppSpec(Frozen):
    app: AppName
    content: tuple[str, ...] = ()  # kinds this app takes; defaults to every kind it can open

    @model_validator(mode="after")
    def _content_supported(self) -> AppSpec:
        unsupported = set(self.content) - set(APP_CONTENT[self.app])
        if unsupported:
            raise ValueError(f"{self.app} cannot open {sorted(unsupported)}")
        if not self.content:
            object.__setattr__(self, "content", APP_CONTENT[self.app])
        return self


class EnvSpec(Frozen):
    name: str
    description: str = ""
    screen: Screen = Screen()
    apps: tuple[AppSpec, ...] = Field(min_length=1)
    dialogs: Dialogs = Dialogs()
    office: Office = Office()
    settle: SettlePolicy = SettlePolicy()
    ready_timeout_s: float = Field(30.0, gt=0, le=300)
    network: bool = False  # the apps reach the network (docker; local desktops share the host's)
    # The desktop's user may become root (sudo with OSWorld's password): docker desktops only,
    # whose container is the sandbox; a local desktop never grants it.
    sudo: bool = False
    start_apps: bool = True  # False: reset leaves a bare desktop; `apps` says what opens which file

    def app_for(self, kind: str) -> str:
        """The first app of this env that opens content of `kind`."""
        for spec in self.apps:
            if kind in spec.content:
                return spec.app
        raise ValueError(f"env {self.name!r} has no app for {kind} content "
                         f"(apps: {', '.join(a.app for a in self.apps)})")


def load_env(path: str | Path) -> EnvSpec:
    """Load and validate an env spec from YAML; a bare name (`calc`) is one of
    the specs shipped in `cua/envs/`."""
    path = Path(path)
    if not path.exists() and path.suffix == "":
        if not (ENVS_DIR / f"{path}.yaml").exists():
            known = ", ".join(sorted(p.stem for p in ENVS_DIR.glob("*.yaml")))
            raise ValueError(f"unknown env {str(path)!r}: neither a spec YAML nor one of {known}")
        path = ENVS_DIR / f"{path}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read env spec {path}: {exc}") from exc
    return EnvSpec.model_validate(data)

