"""The collect recipe (`recipes/*.yaml` for `cua collect`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from cua.collect.expert import check_families
from cua.content.documents import GENERATORS
from cua.desktop.registry import BackendName
from cua.envspec import load_env
from cua.recipes import AgentSettings, ModelConfig, Strict


class ContentSource(Strict):
    """Where a run's documents come from: a folder, listed files, or seeded generated ones."""

    folder: Path | None = None
    files: list[Path] = []
    generate: dict[str, int] | None = None  # {workbooks: n, presentations: n, documents: n,
                                            #  seed: s}

    @model_validator(mode="after")
    def _one_source(self) -> ContentSource:
        if sum(bool(x) for x in (self.folder, self.files, self.generate)) != 1:
            raise ValueError("content needs exactly one of folder, files or generate")
        if self.generate:
            unknown = sorted(set(self.generate) - set(GENERATORS) - {"seed"})
            if unknown:
                raise ValueError(f"content.generate: unknown kind {unknown[0]!r} "
                                 f"({', '.join(GENERATORS)})")
        return self


class RoleModels(Strict):
    """Per-role model overrides; by default one model (`model`) plays all three roles."""

    goal: ModelConfig | None = None
    judge: ModelConfig | None = None
    executor: ModelConfig | None = None


class RayConfig(Strict):
    address: str = "auto"          # a cluster address, "auto", or "local" for a local Ray
    cpus_per_desktop: float = Field(1.0, gt=0)


class CollectRecipe(AgentSettings):
    name: str
    out: Path = Path("runs")
    content: ContentSource
    envs: list[str] = Field(min_length=1)    # env names (calc, calc-writer, …) or spec paths
    tasks_per_content: int = Field(3, ge=1)
    families: list[str] = []                 # template families the scripted goal generator
                                             # proposes from (calc.bold_header, …); empty: all
    roles: RoleModels = RoleModels()
    workers: int = Field(2, ge=1)
    standby: bool = False                    # a second desktop per worker, set up for its next
                                             # episode while it runs this one
    backend: BackendName = "local"
    ray: RayConfig | None = None
    seed: int = 0

    @field_validator("envs")
    @classmethod
    def _envs_load(cls, names: list[str]) -> list[str]:
        for name in names:
            load_env(name)
        return names

    @field_validator("families")
    @classmethod
    def _known_families(cls, names: list[str]) -> list[str]:
        check_families(names)
        return names

    @model_validator(mode="after")
    def _families_need_scripted_goals(self) -> CollectRecipe:
        if self.families and not self.role_model("goal").scripted:
            raise ValueError("families only apply to the scripted goal generator, but the goal "
                             f"role is played by {self.role_model('goal').name!r}")
        return self

    def role_model(self, role: str) -> ModelConfig:
        return getattr(self.roles, role) or self.model
