"""Runs the editor's pure-model unit tests (`node --test tests/web/`) under pytest."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_graph_model_node_tests():
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    files = sorted(str(p) for p in (ROOT / "tests" / "web").glob("*.test.mjs"))
    assert files, "no tests/web/*.test.mjs found"
    proc = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout and "# pass 0" not in proc.stdout
