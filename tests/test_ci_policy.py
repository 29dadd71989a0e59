"""The CI skip policy (tests/ci_policy.py), run as a real pytest session on a small temporary test file."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = '''
import shutil
import pytest

def test_passes():
    pass

@pytest.mark.skipif(True, reason="needs a CUDA device")
def test_cuda_marker():
    pass

def test_cuda_call():
    pytest.skip("needs CUDA")

def test_no_browser():
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")

@pytest.mark.skipif(True, reason="Node.js is not installed")
def test_no_node():
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    assert False
'''

WHOLE_FILE = '''
import pytest
pytest.importorskip("a_module_that_is_not_installed")

def test_never_collected():
    pass
'''


def run_pytest(tmp_path: Path, ci: str | None, source: str = SAMPLE) -> tuple[int, str, dict[str, str]]:
    """Run pytest with only the policy plugin on one sample file; (exit code, output, outcome per test)."""
    (tmp_path / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.ci_policy", "-p", "no:cacheprovider",
                           "-v", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    out = proc.stdout + proc.stderr
    outcomes = dict(re.findall(r"::(\w+) (PASSED|FAILED|SKIPPED|XFAIL|ERROR)", out))
    return proc.returncode, out, outcomes


def test_ci_fails_every_skip_but_cuda(tmp_path):
    code, out, outcomes = run_pytest(tmp_path, "true")
    assert code == 1, out
    assert outcomes["test_passes"] == "PASSED"
    assert outcomes["test_known_bug"] == "XFAIL"  # an expected failure is not a skip
    assert outcomes["test_no_browser"] == "FAILED", out
    assert outcomes["test_no_node"] == "ERROR", out  # a skipif marker acts in setup: reported as an error
    assert "skipped under CI=true: /usr/bin/chromium is not installed" in out
    assert "skipped under CI=true: Node.js is not installed" in out
    assert re.search(r"1 failed, 1 passed, 2 skipped, 1 xfailed, 1 error", out), out


def test_ci_fails_a_file_skipped_at_collection(tmp_path):
    code, out, _ = run_pytest(tmp_path, "true", WHOLE_FILE)
    assert code == 2, out  # a collection error interrupts the session: the run is red at once
    assert "skipped under CI=true: could not import 'a_module_that_is_not_installed'" in out


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_outside_ci_skips_stay_skips(tmp_path, ci):
    code, out, _ = run_pytest(tmp_path, ci)
    assert code == 0, out
    assert re.search(r"1 passed, 4 skipped, 1 xfailed", out), out
    code, out, _ = run_pytest(tmp_path, ci, WHOLE_FILE)
    assert code == 5 and "1 skipped" in out, out  # 5: pytest ran no test, as it always does here
