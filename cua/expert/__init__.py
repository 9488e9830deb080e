"""The scripted expert: plays goal generator, judge and executor for template task families."""

from __future__ import annotations

from importlib import import_module

from cua.expert.base import ExpertStep, Family

FAMILY_MODULES = ("cua.expert.calc", "cua.expert.impress", "cua.expert.writer")


def families() -> dict[str, Family]:
    """Every template family by name."""
    found: dict[str, Family] = {}
    for module in FAMILY_MODULES:
        for family in import_module(module).FAMILIES:
            found[family.name] = family
    return found


__all__ = ["ExpertStep", "Family", "families"]
