"""The scripted expert: plays goal generator, judge and agent for template task families."""

from __future__ import annotations

from importlib import import_module

from cua.collect.expert.base import ExpertStep, Family

FAMILY_MODULES = tuple(f"cua.collect.expert.{app}" for app in ("calc", "impress", "writer"))


def families() -> dict[str, Family]:
    """Every template family by name."""
    found: dict[str, Family] = {}
    for module in FAMILY_MODULES:
        for family in import_module(module).FAMILIES:
            found[family.name] = family
    return found


__all__ = ["ExpertStep", "Family", "families"]
