"""CI skip policy (a pytest plugin, loaded by tests/conftest.py): under CI=true a skip is a failure
unless its reason says it needs CUDA.

A missing Chromium, Node.js or Python package would otherwise turn whole suites into skips and the run
would still look green. Only CUDA may be absent: CI machines have no GPU.
"""
from __future__ import annotations

import os
import re

import pytest

# The one reason a test may skip in CI: "needs CUDA", "needs a CUDA device", ...
ALLOWED = re.compile(r"\bneeds (a )?CUDA\b", re.IGNORECASE)


def in_ci() -> bool:
    """CI=true (what CI runners set; also .ci/run), or 1/yes."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _enforce(report) -> None:
    """Turn a disallowed skip into a failure that says why (xfail is not a skip and is left alone)."""
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    reason = _reason(report)
    if ALLOWED.search(reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped under CI=true: {reason}\n"
                       "In CI only tests that need CUDA may skip; install what is missing (.ci/run installs "
                       "chromium and node) or fix the test.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _enforce(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A module-level pytest.skip / importorskip skips a whole file at collection time.
    outcome = yield
    _enforce(outcome.get_result())


def pytest_report_header(config):
    if in_ci():
        return "CI=true: any skip whose reason is not 'needs CUDA' fails (tests/ci_policy.py)"
    return None
