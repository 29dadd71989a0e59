"""Layering: models → runtime → nodes; engine and api never import the node package.

The runtime once imported the node package (env → workflows → loaders → env: a cycle that made
`import nodes.loaders` order-dependent). This walks every import statement, so a new one fails here.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# package → top-level packages of ours it must not import (at module level or inside functions)
FORBIDDEN = {
    "models": {"nodes", "runtime", "engine", "api"},
    "runtime": {"nodes", "api"},
    "engine": {"nodes", "runtime", "api", "models"},
    "api": {"nodes"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_the_layers_below_it(package):
    bad = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        hit = imported_packages(path) & FORBIDDEN[package]
        if hit:
            bad[str(path.relative_to(ROOT))] = sorted(hit)
    assert bad == {}


def test_nodes_folder_holds_only_nodes_and_their_types():
    """What in nodes/ is not a node (environment, residency, weights, workflows...) lives in runtime/."""
    for name in ("env", "residency", "weights", "workflows", "comfy_folders", "temp_files", "admission", "runtime"):
        assert not (ROOT / "nodes" / f"{name}.py").exists(), name
