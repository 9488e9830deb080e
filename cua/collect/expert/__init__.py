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


def check_families(names: list[str]) -> None:
    """A ValueError naming the template families of `names` that do not exist, and those that
    do."""
    known = families()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown template families {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(known))})")


__all__ = ["ExpertStep", "Family", "check_families", "families"]
