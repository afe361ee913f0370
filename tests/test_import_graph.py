"""invlab's modules import each other without a cycle, and no module borrows from an unrelated family.

The graph is built from the source with ``ast`` (nothing is imported): an edge ``a -> b`` for every
``import b`` / ``from b import x`` (or ``from a.b import c`` naming the submodule ``a.b.c``) at a module's top
level, outside ``if TYPE_CHECKING:``; imports inside functions are deferred and left out.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "invlab"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.With):
            pending += node.body
    return found


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def import_graph() -> dict[str, set[str]]:
    """{module: the invlab modules it imports at top level}."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets: set[str] = set()
        for node in _top_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                source = _resolve(module, node)
                names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]
            targets |= {n for n in names if n in MODULES and n != module}
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_the_imports():
    graph = import_graph()
    assert "invlab.models.anf.skeleton" in graph["invlab.models.anf.anfic"]
    assert "invlab.entropy.mixture" in graph["invlab.models.anf.priors"]
    assert "invlab.models.registry" in graph["invlab.models"]


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_invlab_imports_are_acyclic():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


# what each family's modules may import from the other families' folders: nothing
FAMILIES = {
    "invlab.models.anf": "anf",
    "invlab.models.msinn": "msinn",
    "invlab.models.invcompress": "invcompress",
}


def _family(module: str) -> str | None:
    return next((f for prefix, f in FAMILIES.items() if module == prefix or module.startswith(prefix + ".")), None)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _family(m)))
def test_no_family_borrows_from_another(module):
    graph = import_graph()
    borrowed = {t for t in graph[module] if _family(t) not in (None, _family(module))}
    assert not borrowed, f"{module} imports {sorted(borrowed)} (shared layers belong in invlab.layers)"
