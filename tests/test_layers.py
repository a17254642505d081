"""Layers only look down (babyterm -> school -> soul -> brain), the engine never imports a UI, no cycles."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("brain", "school", "soul", "babyterm")
OURS = (*PACKAGES, "tests", "benchmarks")
UI = ("textual", "rich")


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a module name."""

    module: str
    line: int
    top_level: bool
    """Run when the module is imported (not inside a function): the imports that can form a cycle."""


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of `packages` under `root`, by dotted name."""
    return {
        module_name(root, path): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if "__snapshots__" not in path.parts
    }


def _walk(node: ast.AST, top_level: bool):
    """Every import under `node`, with whether it runs at import time.

    Function bodies run later; everything else (`if TYPE_CHECKING:`, `try:`, class bodies) counts as
    module level, so a type-only import that would be a cycle is reported as one.
    """
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, top_level
        inner = top_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk(child, inner)


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """The modules `path` imports; `from a import b` means module `a.b` when that is one of ours."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node, top_level in _walk(tree, True):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        found += [Import(t, node.lineno, top_level) for t in targets]
    return list(dict.fromkeys(found))  # `from a import b, c` names module a once


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, list[Import]]:
    modules = find_modules(root, packages)
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def top(module: str) -> str:
    return module.split(".")[0]


def layer_violations(graph: dict[str, list[Import]]) -> list[str]:
    """Every import that breaks a rule, as `module:line imports target (why)`."""
    allowed = {
        "brain": {"brain"},
        "soul": {"soul", "brain"},
        "school": {"school", "soul", "brain"},
        "babyterm": {"babyterm", "school", "soul", "brain"},
    }
    bad = []
    for name, imports in sorted(graph.items()):
        layer = top(name)
        for imp in imports:
            target = top(imp.module)
            if target in OURS and target not in allowed[layer]:
                bad.append(f"{name}:{imp.line} imports {imp.module} ({layer}/ may not import {target}/)")
            elif target in UI and layer != "babyterm":
                bad.append(f"{name}:{imp.line} imports {imp.module} (only babyterm/ draws)")
    return bad


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (or one importing itself), by Tarjan."""
    edges = {
        name: sorted({i.module for i in imports if i.top_level and i.module in graph})
        for name, imports in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in edges[v]:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(groups)


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Import]]:
    return import_graph(ROOT)


def test_the_scan_sees_the_project(graph: dict[str, list[Import]]) -> None:
    assert {top(name) for name in graph} == set(PACKAGES)
    assert "school.exports.adopt" in graph and "soul.exports" not in graph
    tutor_imports = {i.module for i in graph["school.tutor"]}
    assert "school.calligraphist" in tutor_imports and "torch" in tutor_imports


def test_layers_only_look_down_and_only_babyterm_draws(graph: dict[str, list[Import]]) -> None:
    assert layer_violations(graph) == []


def test_no_import_cycles(graph: dict[str, list[Import]]) -> None:
    assert cycles(graph) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for package in PACKAGES:
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


def test_the_checks_catch_what_they_forbid(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "soul/disk.py": "def f():\n    from school.tutor import Tutor\n",
            "brain/model.py": "import soul.disk\n",
            "school/paint.py": "from rich.text import Text\n",
            "school/tutor.py": "import typing\nif typing.TYPE_CHECKING:\n    from school import speaker\n",
            "school/speaker.py": "from . import tutor\n",
            "school/late.py": "def f():\n    import school.lazy\n",
            "school/lazy.py": "import school.late\n",
            "babyterm/app.py": "import textual\nfrom school.tutor import Tutor\n",
        },
    )
    graph = import_graph(root)
    assert layer_violations(graph) == [
        "brain.model:1 imports soul.disk (brain/ may not import soul/)",
        "school.paint:1 imports rich.text (only babyterm/ draws)",
        "soul.disk:2 imports school.tutor (soul/ may not import school/)",
    ]
    # the TYPE_CHECKING import and the relative one close a cycle; a function-local import does not
    assert cycles(graph) == [["school.speaker", "school.tutor"]]
