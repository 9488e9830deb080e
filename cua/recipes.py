"""Recipes: YAML files validated at load time, with `a.b=c` overrides from the command line, and
the settings every recipe that runs an agent shares (its model, format and step limits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cua.formats import check_format

R = TypeVar("R", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServeConfig(Strict):
    """A server the command starts for its run and stops after it, whatever happens: the
    endpoint of the model config it belongs to (see `cua serve`)."""

    engine: Literal["transformers", "vllm"] = "transformers"  # transformers: CPU; vllm: GPUs
    model: Path                             # a local model dir (nothing downloads at run time)
    host: str = "127.0.0.1"                 # 0.0.0.0: other hosts (Ray workers) reach it by
                                            # this host's name
    port: int | None = Field(None, ge=1, le=65535)  # None: a free port
    tensor_parallel: int | None = Field(None, ge=1)  # vllm; None: the GPUs present, fitted
    max_model_len: int | None = Field(None, ge=1)    # vllm; None: sample budget + max_tokens
    args: list[str] = []                    # more flags for the engine, as given
    timeout_s: float = Field(900.0, gt=0)   # until it answers its health check


class ModelConfig(Strict):
    """One model endpoint and its sampling (UI-TARS-1.5 reference: temperature 0, max_tokens
    1000). `name: scripted` selects the built-in scripted expert instead. `concurrency` bounds the
    requests in flight to this endpoint from all the workers of a run (per process on Ray).
    With `serve`, the command serves the model itself and `base_url` is that server's."""

    name: str = "scripted"
    base_url: str | None = None
    serve: ServeConfig | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int = Field(1000, gt=0)
    top_p: float | None = None
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    concurrency: int = Field(8, ge=1)
    extra_body: dict[str, Any] = {}

    @property
    def scripted(self) -> bool:
        return self.name == "scripted"

    @model_validator(mode="after")
    def _endpoint(self) -> ModelConfig:
        if not self.scripted and not self.base_url and self.serve is None:
            raise ValueError(f"model {self.name!r} needs a base_url (an OpenAI-compatible "
                             "endpoint, e.g. http://gpu-host:8000/v1) or a serve block")
        return self


class AgentSettings(Strict):
    """The agent of a collect or eval recipe: the model that acts, the format it speaks, and its
    step limits. The format is built at load time, so bad options are refused there."""

    model: ModelConfig = ModelConfig()
    agent_format: str = "uitars-1.5"
    agent_format_options: dict[str, Any] = {}  # min_pixels, max_pixels, history_n, …
    max_steps: int = Field(15, ge=1)
    parse_error_budget: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _format_builds(self) -> AgentSettings:
        check_format(self.agent_format, self.agent_format_options, "agent_format_options")
        return self


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys (`model.base_url=http://…`, `workers=16`); values are parsed as YAML."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key.path=value")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part} is not a mapping")
        node[leaf] = yaml.safe_load(raw)
    return data


def validate_recipe(kind: type[R], data: dict[str, Any], overrides: list[str] = (),
                    source: str = "recipe") -> R:
    """Validate `data` with `overrides` applied; errors name the source and every bad field."""
    try:
        return kind.model_validate(apply_overrides(data, list(overrides)))
    except ValidationError as exc:
        problems = "; ".join(": ".join(filter(None, (".".join(map(str, e["loc"])),
                                                     _message(e["msg"]))))
                             for e in exc.errors())
        raise ValueError(f"{source}: {problems}") from None


def _message(text: str) -> str:
    text = text.removeprefix("Value error, ")
    return text[:1].lower() + text[1:]


def read_recipe(path: Path) -> dict[str, Any]:
    """A recipe file's fields, unvalidated."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read recipe {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"recipe {path}: expected a mapping of fields")
    return data


def load_recipe(path: Path, overrides: list[str] = (), *, kind: type[R]) -> R:
    """Read, override and validate a recipe file."""
    return validate_recipe(kind, read_recipe(path), overrides, str(path))
