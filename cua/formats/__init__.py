"""Agent formats by name. A new format is one module here plus one line in :data:`FORMATS`."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from cua.formats.base import AgentFormat, Context, Message, Parsed, ParseError, Step

FORMATS: dict[str, str] = {
    "uitars-1.5": "cua.formats.uitars:UITars15",
    "uitars-1.0": "cua.formats.uitars:UITars10",
}

__all__ = ["FORMATS", "AgentFormat", "Context", "Message", "ParseError", "Parsed", "Step",
           "get_format"]


def get_format(name: str, **options: Any) -> AgentFormat:
    """Build the format called ``name`` with options (min_pixels, max_pixels, history_n, ...)."""
    if name not in FORMATS:
        raise ValueError(f"unknown agent format {name!r}; known: {', '.join(FORMATS)}")
    module, _, attr = FORMATS[name].partition(":")
    fmt: AgentFormat = getattr(import_module(module), attr)(**options)
    return fmt
