"""Hostile HTTP requests for every route: hypothesis strategies, a raw sender and a checker.

Shared by tests/test_server_fuzz.py (a few thousand cases) and soak scripts (>= 10,000)::

    from tests.fuzz_cases import run_fuzz
    report = run_fuzz("http://127.0.0.1:8188", count=10_000, seed=1)
    print(report.sent, report.by_status, report.problems)

A case is one request: any route (bare and ``/api``), odd path parameters (long, percent-encoded
invalid UTF-8, raw non-ASCII bytes), odd query strings (huge integers, bad escapes) and bodies
drawn from JSON values with NaN/Infinity, huge numbers, lone surrogates, deep nesting, wrong
types, prompts with one input mutated, multipart uploads and plain garbage bytes. A problem is
a 5xx, no answer at all, or a JSON reply a browser could not parse (a bare NaN/Infinity).
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from tests.stub_nodes import chain_prompt

# Body keys the routes read, so drawn objects reach the code behind them.
BODY_KEYS = ("prompt", "number", "front", "extra_data", "client_id", "prompt_id", "delete",
             "clear", "pause", "partial_execution_targets", "unload_models", "free_memory",
             "extra_pnginfo", "workflow", "nodes", "class_type", "inputs", "_meta")
QUERY_KEYS = ("max_items", "offset", "filename", "subfolder", "type", "preview", "channel",
              "clientId", "previews", "timeout", "token")  # never "wait": a paused queue holds it
ODD_TEXT = ("", " ", "\x00", "\ud800", "a\udfff", "\U0001f4a5", "NaN", "Infinity", "..",
            "../../x", "/etc/passwd", "a" * 300, "[" * 200, "9" * 40, "-1", "1e400", "%ff",
            "x [output]", "\\", "\u202e", "0x10", "true")
HUGE_INTS = (2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -(10**400))


@dataclass(frozen=True)
class Case:
    method: str
    target: bytes  # path and query as sent on the request line (may hold raw bytes)
    body: bytes = b""
    content_type: str | None = None


@dataclass
class Report:
    sent: int = 0
    by_status: Counter = field(default_factory=Counter)
    problems: list = field(default_factory=list)  # (case, what went wrong)


def routes() -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, bare and under ``/api``."""
    from api import ROUTE_MODULES
    table = [(m, p) for module in ROUTE_MODULES for m, p, _ in module.ROUTES]
    table.append(("GET", "/ws"))
    table = [(m, prefix + p) for prefix in ("", "/api") for m, p in table]
    return table + [("GET", "/{path}")]  # the editor's static catch-all


texts = st.text(max_size=12) | st.sampled_from(ODD_TEXT)
numbers = (st.integers() | st.sampled_from(HUGE_INTS)
           | st.floats(allow_nan=True, allow_infinity=True))
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(BODY_KEYS) | texts, inner, max_size=4), max_leaves=16)


def _encode(value) -> bytes:
    """JSON as Python writes it: NaN/Infinity literals; lone surrogates as invalid UTF-8."""
    try:
        return json.dumps(value).encode("utf-8", "surrogatepass")
    except (RecursionError, ValueError):
        return b"null"


@st.composite
def mutated_prompt(draw) -> bytes:
    """A runnable stub prompt with one input (or class, or node) replaced by a drawn value."""
    prompt = chain_prompt(value=draw(st.integers(0, 50)))
    node = draw(st.sampled_from(sorted(prompt)))
    where = draw(st.sampled_from(("input", "class", "node", "meta", "none")))
    if where == "input":
        name = draw(st.sampled_from(sorted(prompt[node]["inputs"]) + ["extra"]))
        prompt[node]["inputs"][name] = draw(json_values)
    elif where == "class":
        prompt[node]["class_type"] = draw(json_values)
    elif where == "node":
        prompt[node] = draw(json_values)
    elif where == "meta":
        prompt[node]["_meta"] = draw(json_values)
    body = {"prompt": prompt}
    body.update(draw(st.dictionaries(st.sampled_from(BODY_KEYS), json_values, max_size=3)))
    body.pop("pause", None)  # the fuzzer must not stop the queue it then checks
    body["prompt"] = prompt
    return _encode(body)


@st.composite
def deep_json(draw) -> bytes:
    depth = draw(st.sampled_from((63, 64, 65, 200, 1000, 100_000)))
    opener, closer = draw(st.sampled_from(((b"[", b"]"), (b'{"a":', b"}"))))
    core = opener * depth + b"1" + closer * depth
    return b'{"prompt": {}, "extra_data": ' + core + b"}" if draw(st.booleans()) else core


@st.composite
def multipart(draw) -> tuple[bytes, str]:
    boundary = "fuzzboundary"
    parts = []
    for name in draw(st.lists(st.sampled_from(("image", "type", "subfolder", "overwrite")),
                              max_size=4)):
        text = draw(texts).encode("utf-8", "surrogatepass")
        if name == "image":
            filename = draw(texts).encode("utf-8", "surrogatepass")
            parts.append(b'Content-Disposition: form-data; name="image"; filename="' + filename
                         + b'"\r\nContent-Type: image/png\r\n\r\n' + draw(st.binary(max_size=64)))
        else:
            parts.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + text)
    sep = f"--{boundary}\r\n".encode()
    body = b"".join(sep + p + b"\r\n" for p in parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


bodies = st.one_of(
    json_values.map(_encode),
    st.dictionaries(st.sampled_from(BODY_KEYS), json_values, max_size=5).map(_encode),
    mutated_prompt(), mutated_prompt(), deep_json(), st.binary(max_size=64),
    st.sampled_from((b"", b"{}", b"NaN", b'{"number": 1e400}', b'{"number": Infinity}',
                     b'{"prompt_id": "\\ud800", "prompt": {}}', b"\xef\xbb\xbf{}",
                     b'{"number": ' + b"9" * 5000 + b"}", b"\xff\xfe{\x00}\x00")))


def _quote(value: str) -> str:
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")


path_params = st.one_of(
    texts.map(_quote), st.sampled_from(("%ff", "%ed%a0%80", "%00", "a" * 257, "%2e%2e",
                                        "workflows/default.json", "index.html")),
    st.binary(min_size=1, max_size=8).map(lambda b: b.decode("latin-1")))


@st.composite
def queries(draw) -> str:
    items = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS) | texts, st.one_of(
        texts, numbers.map(str), st.sampled_from(("%ff", "%zz", "9" * 40, "1" * 5000)))),
        max_size=3))
    out = []
    for key, value in items:
        raw = value in ("%ff", "%zz")  # keep malformed escapes as sent
        out.append(f"{_quote(key)}={value if raw else _quote(value)}")
    return "&".join(out)


@st.composite
def cases(draw) -> Case:
    method, template = draw(st.sampled_from(routes()))
    path = re.sub(r"\{[^}]*\}", lambda _: draw(path_params), template)
    query = draw(queries())
    target = (path + ("?" + query if query else "")).encode("latin-1", "replace")
    if template.endswith("/upload/image") and draw(st.booleans()):
        body, ctype = draw(multipart())
        return Case(method, target, body, ctype)
    ctype = draw(st.sampled_from(("application/json", None, "text/plain",
                                  "multipart/form-data; boundary=x")))
    body = draw(bodies) if method == "POST" or draw(st.integers(0, 9)) == 0 else b""
    return Case(method, target, body, ctype)


def send(base: str, case: Case, timeout: float = 30) -> tuple[int, dict, bytes]:
    """Send `case` over a fresh socket (raw bytes allowed in the target); (status, headers, body)."""
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    head = [case.method.encode() + b" " + case.target + b" HTTP/1.1",
            f"Host: {host}:{port}".encode(), b"Connection: close",
            f"Content-Length: {len(case.body)}".encode()]
    if case.content_type:
        head.append(f"Content-Type: {case.content_type}".encode())
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + case.body)
        response = http.client.HTTPResponse(sock, method=case.method)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def strict_json(raw: bytes):
    """Parse as a browser's JSON.parse would: bare NaN/Infinity raise ValueError."""
    def refuse(name):
        raise ValueError(f"bare {name}")
    return json.loads(raw, parse_constant=refuse)


def problem(status: int, headers: dict, body: bytes) -> str | None:
    """What is wrong with a reply, or None."""
    if status >= 500:
        return f"HTTP {status}: {body[:300]!r}"
    if headers.get("Content-Type", "").startswith("application/json") and body:
        try:
            strict_json(body)
        except ValueError as exc:
            return f"HTTP {status} with unparseable JSON ({exc}): {body[:200]!r}"
    return None


def run_fuzz(base: str, count: int, seed: int | None = None) -> Report:
    """Send `count` drawn cases to the server at `base`; problems are collected, not raised.

    Without `seed` the cases are derandomized (the same on every run, as CI needs); a soak
    passes a seed per round to explore further.
    """
    report = Report()

    @settings(max_examples=count, database=None, deadline=None, derandomize=seed is None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(cases())
    def one(case: Case) -> None:
        report.sent += 1
        try:
            status, headers, body = send(base, case)
        except (OSError, http.client.HTTPException) as exc:
            report.problems.append((case, f"no answer: {exc!r}"))
            return
        report.by_status[status] += 1
        found = problem(status, headers, body)
        if found:
            report.problems.append((case, found))

    (one if seed is None else hypothesis.seed(seed)(one))()
    return report
