"""Agent formats by name. A new format is one module here plus one line in :data:`FORMATS`."""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path
from typing import Any

from cua.formats.base import (
    AgentFormat,
    Context,
    LoopPolicy,
    Message,
    Parsed,
    ParseError,
    Step,
)

FORMATS: dict[str, str] = {
    "uitars-1.5": "cua.formats.uitars:UITars15",
    "uitars-1.0": "cua.formats.uitars:UITars10",
}

__all__ = ["FORMATS", "AgentFormat", "Context", "LoopPolicy", "Message", "ParseError", "Parsed",
           "Step", "check_format", "format_class", "get_format", "model_bounds"]


def format_class(name: str) -> type[AgentFormat]:
    if name not in FORMATS:
        raise ValueError(f"unknown agent format {name!r}; known: {', '.join(FORMATS)}")
    module, _, attr = FORMATS[name].partition(":")
    return getattr(import_module(module), attr)


def get_format(name: str, **options: Any) -> AgentFormat:
    """Build the format called ``name`` with options (min_pixels, max_pixels, history_n, ...)."""
    return format_class(name)(**options)


def check_format(name: str, options: dict[str, Any], field: str) -> None:
    """For a recipe's validator: a ValueError unless the format builds with `options` (read
    from `field`)."""
    try:
        get_format(name, **options)
    except TypeError as exc:  # an option the format does not have
        raise ValueError(f"{field}: {exc}") from None


def model_bounds(name: str, model: Path) -> dict[str, Any]:
    """The options of format ``name`` that a student model dir's image processor sets (its
    pixel bounds), so samples, eval requests and the server's own resizing agree."""
    for config in ("processor_config.json", "preprocessor_config.json"):
        if (model / config).exists():
            return format_class(name).processor_options(json.loads((model / config).read_text()))
    raise FileNotFoundError(f"{model} has no processor_config.json or preprocessor_config.json")
