"""The package's shape: one-way flow content → desktop → scoring → collect → data → train →
evaluate over a small core, with the entry points on top. No module imports a later stage, and
no modules import each other in a cycle (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import cua

ROOT = Path(cua.__file__).parent
# Each layer may import its own and earlier layers only.
LAYERS = [
    ("core", ("cua.actions", "cua.records", "cua.recipes", "cua.envspec", "cua.formats")),
    ("content", ("cua.content",)),
    ("desktop", ("cua.desktop",)),
    ("scoring", ("cua.scoring",)),
    ("collect", ("cua.collect",)),
    ("data", ("cua.data",)),
    ("train", ("cua.train",)),
    ("evaluate", ("cua.evaluate",)),
    ("entry", ("cua.cli", "cua.loop", "cua.bench", "cua.__main__", "cua")),
]


def layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every cua module and the cua modules it imports, anywhere in its body."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_every_module_sits_in_a_layer():
    for module in imports():
        layer(module)


def test_no_stage_imports_a_later_one():
    later = [f"{module} ({LAYERS[layer(module)][0]}) imports {target} "
             f"({LAYERS[layer(target)][0]})"
             for module, targets in imports().items() for target in sorted(targets)
             if layer(target) > layer(module)]
    assert not later, "\n".join(later)


def test_no_import_cycles():
    graph, state, cycles = imports(), {}, []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_function_level_imports_are_seen():
    """The rules are not vacuous: imports inside functions count (the CLI imports its stages
    lazily), and a stage importing a later one ranks as a violation."""
    graph = imports()
    assert {"cua.evaluate.runner", "cua.collect.driver", "cua.train.sft"} <= graph["cua.cli"]
    assert layer("cua.collect.driver") < layer("cua.evaluate.runner")
    assert layer("cua.content.documents") < layer("cua.collect.driver")
