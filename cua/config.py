"""Recipes: YAML files validated at load time, with `a.b=c` overrides from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cua.models import ModelConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContentSource(Strict):
    """Where a run's documents come from: a folder, listed files, or seeded generated ones."""

    folder: Path | None = None
    files: list[Path] = []
    generate: dict[str, int] | None = None  # {workbooks: n, presentations: n, documents: n, seed: s}

    @model_validator(mode="after")
    def _one_source(self) -> ContentSource:
        if sum(bool(x) for x in (self.folder, self.files, self.generate)) != 1:
            raise ValueError("content needs exactly one of folder, files or generate")
        return self


class Roles(Strict):
    """Per-role model overrides; by default one model plays all three roles."""

    goal: ModelConfig | None = None
    judge: ModelConfig | None = None
    executor: ModelConfig | None = None


class RayConfig(Strict):
    address: str = "auto"          # a cluster address, "auto", or "local" for a local Ray
    cpus_per_desktop: float = Field(1.0, gt=0)


class CollectRecipe(Strict):
    name: str
    out: Path = Path("runs")
    content: ContentSource
    envs: list[str] = Field(min_length=1)    # env names (envs/NAME.yaml) or paths
    tasks_per_content: int = Field(3, ge=1)
    families: list[str] = []                 # template families the scripted goal generator
                                             # proposes from (calc.bold_header, …); empty: all
    model: ModelConfig = ModelConfig()
    roles: Roles = Roles()
    agent_format: str = "uitars-1.5"
    agent_format_options: dict[str, Any] = {}  # min_pixels, max_pixels, history_n, …
    max_steps: int = Field(15, ge=1)
    parse_error_budget: int = Field(3, ge=1)
    workers: int = Field(2, ge=1)
    backend: str = "local"
    ray: RayConfig | None = None
    seed: int = 0

    @field_validator("families")
    @classmethod
    def _known_families(cls, names: list[str]) -> list[str]:
        from cua.expert import families

        known = families()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown template families {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        return names

    @model_validator(mode="after")
    def _families_need_scripted_goals(self) -> CollectRecipe:
        if self.families and not self.role_model("goal").scripted:
            raise ValueError("families only apply to the scripted goal generator, but the goal "
                             f"role is played by {self.role_model('goal').name!r}")
        return self

    def role_model(self, role: str) -> ModelConfig:
        return getattr(self.roles, role) or self.model


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


def load_recipe(path: Path, overrides: list[str] = (), kind: type[BaseModel] = CollectRecipe):
    """Read, override and validate a recipe; errors name the file and the bad field."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read recipe {path}: {exc}") from exc
    return kind.model_validate(apply_overrides(data, list(overrides)))
