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
# Command-line entry points that live in a package for their `python -m` name but sit on top of the
# layers (like cli.py and server.py): allowed to import the runtime; no module may import them.
ENTRY_POINTS = {"models/download.py": {"runtime"}}  # `python -m models.download` (issue 14) over runtime.downloads


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
        hit -= ENTRY_POINTS.get(path.relative_to(ROOT).as_posix(), set())
        if hit:
            bad[str(path.relative_to(ROOT))] = sorted(hit)
    assert bad == {}


def test_entry_points_are_imported_by_nothing():
    modules = {name[:-3].replace("/", ".") for name in ENTRY_POINTS}
    importers = []
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts or path.parts[len(ROOT.parts)] == "tests":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if isinstance(node, ast.ImportFrom) and node.module in ("models",):
                names += [f"models.{a.name}" for a in node.names]
            importers += [str(path.relative_to(ROOT)) for n in names if n in modules]
    assert importers == []


def test_nodes_folder_holds_only_nodes_and_their_types():
    """What in nodes/ is not a node (environment, residency, weights, workflows...) lives in runtime/."""
    for name in ("env", "residency", "weights", "workflows", "comfy_folders", "temp_files", "admission", "runtime"):
        assert not (ROOT / "nodes" / f"{name}.py").exists(), name
