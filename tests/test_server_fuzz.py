"""Fuzz every route of the live server: no 5xx, no unparseable JSON, and a healthy server after.

The cases come from tests/fuzz_cases.py (derandomized, so CI sees the same cases every run);
soak scripts reuse ``run_fuzz`` with larger counts and seeds.
"""
import json
import urllib.parse

import pytest

from tests.fuzz_cases import Case, problem, routes, run_fuzz, send, strict_json
from tests.server_harness import http, stub_server
from tests.stub_nodes import chain_prompt

FUZZ_CASES = 2500
# Fixed nasty inputs every route gets, whatever hypothesis draws.
NASTY_BODIES = (b'{"number": NaN, "prompt": {}}', b'{"x": [Infinity]}', b'{"n": 1e400}',
                b"[" * 100_000, b'{"prompt_id": "\\ud800"}', b'{"a": "\xff"}',
                b'{"delete": ["' + b"a" * 5000 + b'"]}', b"\x00\x01garbage")
NASTY_PARAMS = ("%ff", "%ed%a0%80", "a" * 5000, "%00", "\udcff")
NASTY_QUERIES = ("max_items=" + "9" * 30, "offset=%ff&max_items=-1", "filename=%00&subfolder=%ff",
                 "preview=webp;" + "9" * 40, "%ff=%ff", "clientId=" + "x" * 3000)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with stub_server(tmp_path_factory.mktemp("fuzz")) as (base, env, _):
        yield base


def _target(template: str, param: str, query: str) -> bytes:
    path = template
    while "{" in path:
        path = path[:path.index("{")] + param + path[path.index("}") + 1:]
    raw = path + ("?" + query if query else "")
    return raw.encode("utf-8", "surrogateescape")


def _assert_healthy(base: str) -> None:
    """/queue and /history parse as strict JSON, and a good prompt still runs to the end."""
    http("POST", base + "/queue", json.dumps({"clear": True, "pause": False}).encode(),
         {"Content-Type": "application/json"})
    http("POST", base + "/interrupt", b"{}", {"Content-Type": "application/json"})
    for path in ("/queue", "/history", "/api/history?max_items=5", "/system_stats"):
        status, _, raw = http("GET", base + path)
        assert status == 200, (path, raw[:300])
        strict_json(raw)
    body = json.dumps({"prompt": chain_prompt(value=9)}).encode()
    status, _, raw = http("POST", base + "/prompt?wait=true&timeout=60", body,
                          {"Content-Type": "application/json"}, timeout=90)
    reply = strict_json(raw)
    assert status == 200 and reply["status"]["status_str"] == "success", reply


def test_route_table_covers_every_registered_route(server):
    from api import ROUTE_MODULES
    table = set(routes())
    for module in ROUTE_MODULES:
        for method, path, _ in module.ROUTES:
            assert (method, path) in table and (method, "/api" + path) in table
    assert ("GET", "/ws") in table and ("GET", "/{path}") in table


def test_every_route_survives_fixed_nasty_requests(server):
    problems = []
    for method, template in routes():
        for i, query in enumerate(NASTY_QUERIES):
            param = NASTY_PARAMS[i % len(NASTY_PARAMS)]
            bodies = NASTY_BODIES if method == "POST" else (b"",)
            for body in bodies:
                case = Case(method, _target(template, urllib.parse.quote(param, safe="%")
                                            if param.isascii() else param, query),
                            body, "application/json")
                status, headers, raw = send(server, case)
                found = problem(status, headers, raw)
                if found:
                    problems.append((case, found))
    assert problems == [], problems[:5]
    _assert_healthy(server)


@pytest.mark.slow
def test_fuzz_every_route_then_server_is_healthy(server):
    report = run_fuzz(server, FUZZ_CASES)
    assert report.sent == FUZZ_CASES
    assert report.problems == [], report.problems[:5]
    assert sum(report.by_status.values()) == FUZZ_CASES
    assert report.by_status[200] > FUZZ_CASES // 10  # the cases reach code, not only 400s
    _assert_healthy(server)
