"""Bad input gets a 4xx naming what is wrong, never a 5xx, and never poisons later replies."""
import json
import uuid

import pytest

from api import MAX_PATH_PARAM
from api.strict_json import MAX_DEPTH
from engine.graph import MAX_PROMPT_NODES
from tests.server_harness import collect_until_done, connect_ws, http, stub_server, wait_for
from tests.stub_nodes import chain_prompt, long_chain_prompt

JSON = {"Content-Type": "application/json"}


def strict(raw: bytes):
    """Parse as a browser would: a bare NaN/Infinity is an error."""
    def refuse(name):
        raise ValueError(f"bare {name} in a reply")
    return json.loads(raw, parse_constant=refuse)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with stub_server(tmp_path_factory.mktemp("bad")) as (base, env, config):
        yield base, env


def post(base, path, raw: bytes):
    status, _, body = http("POST", base + path, raw, JSON)
    return status, strict(body) if body else None


def get(base, path):
    status, _, body = http("GET", base + path)
    return status, strict(body) if body else None


def message(body):
    return body["error"]["message"]


def queue_ids(base):
    status, body = get(base, "/queue")
    assert status == 200
    return {item[1] for item in body["queue_running"] + body["queue_pending"]}


def prompt_body(**extra) -> dict:
    return {"prompt": chain_prompt(value=uuid.uuid4().int % 100), **extra}


@pytest.mark.parametrize("literal,where,raw_extra", [
    ("NaN", "number", '"number": NaN'),
    ("Infinity", "number", '"number": Infinity'),
    ("-Infinity", "extra_data.a[1].b", '"extra_data": {"a": [0, {"b": -Infinity}]}'),
    ("1e400", "extra_data.x", '"extra_data": {"x": 1e400}'),
    ("NaN", "prompt.1._meta.n", None),
    ("Infinity", "prompt.1.inputs.undeclared", None),
    ("9" * 30, "number", '"number": ' + "9" * 30),
])
@pytest.mark.parametrize("prefix", ["", "/api"])
def test_non_finite_and_huge_numbers_refused_at_parse_naming_the_path(server, prefix, literal,
                                                                        where, raw_extra):
    base, _ = server
    before = queue_ids(base)
    payload = prompt_body(prompt_id=str(uuid.uuid4()))
    payload["prompt"]["1"]["_meta"] = {"title": "first"}
    body = json.dumps(payload)
    if raw_extra is None:  # inside the prompt: _meta and an input no node declares
        key = where.split(".")[-1]
        container = '"_meta": {' if "_meta" in where else '"inputs": {'
        body = body.replace(container, container + f'"{key}": {literal}, ', 1)
    else:
        body = body[:-1] + ", " + raw_extra + "}"
    status, reply = post(base, prefix + "/prompt", body.encode())
    assert status == 400, reply
    assert f"'{where}'" in message(reply) and literal[:20] in message(reply)
    assert queue_ids(base) == before  # nothing was queued


def test_number_field_range_and_seed_range(server):
    base, _ = server
    status, reply = post(base, "/prompt", json.dumps(prompt_body(number=2**63)).encode())
    assert status == 400 and "'number'" in message(reply)
    status, reply = post(base, "/prompt", json.dumps(prompt_body(number=1e300)).encode())
    assert status == 400 and "'number'" in message(reply)
    seed = {"1": {"class_type": "Pick", "inputs": {"name": "alpha", "text": "t",
                                                    "seed": 2**64 - 1}},
            "2": {"class_type": "ShowText", "inputs": {"text": ["1", 0]}}}
    status, reply = post(base, "/prompt?wait=true", json.dumps({"prompt": seed}).encode())
    assert status == 200 and reply["outputs"]["2"]["text"] == [f"alpha:t:False:{2**64 - 1}"]


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"prompt": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
])
def test_deep_body_is_refused_naming_the_limit(server, raw):
    base, _ = server
    status, reply = post(base, "/prompt", raw)
    assert status == 400 and f"limit is {MAX_DEPTH}" in message(reply)


def test_deep_extra_data_is_refused_and_replies_stay_healthy(server):
    base, _ = server
    deep = '{"d": ' * 1000 + "{}" + "}" * 1000  # what json.dumps itself cannot write
    before = queue_ids(base)
    body = json.dumps(prompt_body(extra_data="DEEP")).replace('"DEEP"', deep)
    status, reply = post(base, "/prompt", body.encode())
    assert status == 400 and "nested 10" in message(reply)  # "nested 1002 levels deep"
    assert queue_ids(base) == before
    for path in ("/queue", "/history", "/jobs/nope", "/prompt"):
        assert get(base, path)[0] in (200, 404)
    # Brackets inside strings are text, not nesting.
    status, reply = post(base, "/prompt?wait=true", json.dumps(
        prompt_body(extra_data={"note": "[{" * 5000})).encode())
    assert status == 200, reply


def test_oversized_body_is_413(tmp_path):
    with stub_server(tmp_path, max_body_bytes=4096) as (base, _, _):
        status, reply = post(base, "/prompt", json.dumps(
            prompt_body(extra_data={"pad": "x" * 8192})).encode())
        assert status == 413 and reply["error"]["type"] == "payload_too_large"


@pytest.mark.parametrize("path,raw", [
    ("/prompt", '{"prompt": {}, "prompt_id": "\\ud800"}'),
    ("/prompt", '{"prompt": {}, "extra_data": {"\\udfff": 1}}'),
    ("/queue", '{"delete": ["\\ud800"]}'),
    ("/queue", '{"front": "a\\udc00"}'),
    ("/history", '{"delete": ["\\ud800"]}'),
    ("/interrupt", '{"prompt_id": "\\ud800"}'),
    ("/free", '{"unload_models": "\\ud800"}'),
])
def test_lone_surrogates_are_refused(server, path, raw):
    base, _ = server
    status, reply = post(base, path, raw.encode())
    assert status == 400 and "surrogate" in message(reply)


def test_invalid_utf8_body_is_refused(server):
    base, _ = server
    status, reply = post(base, "/prompt", b'{"prompt": {}, "prompt_id": "\xff\xfe"}')
    assert status == 400 and "UTF-8" in message(reply)


@pytest.mark.parametrize("query,status", [
    ("max_items=" + "9" * 30, 400), ("offset=" + "9" * 30, 400),
    (f"max_items={2**63}", 400), (f"offset={2**63 - 1}", 200), ("max_items=%ff", 400),
    ("max_items=" + "1" * 5000, 400),
])
def test_huge_query_integers(server, query, status):
    base, _ = server
    code, reply = get(base, "/history?" + query)
    assert code == status, reply


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_long_or_odd_path_ids(server, prefix):
    base, _ = server
    long_id = "a" * (MAX_PATH_PARAM + 1)
    for method, path in (("GET", "/history/{}"), ("GET", "/jobs/{}"),
                         ("POST", "/jobs/{}/cancel"), ("GET", "/object_info/{}"),
                         ("GET", "/models/{}")):
        status, _, raw = http(method, base + prefix + path.format(long_id))
        assert status == 400 and str(MAX_PATH_PARAM) in message(strict(raw))
        for odd in ("%ff", "%ed%a0%80", "%00", "a" * MAX_PATH_PARAM):
            status, _, raw = http(method, base + prefix + path.format(odd))
            assert status in (200, 404), (path, odd, raw)
            strict(raw)


def test_long_chain_runs_and_oversized_prompt_is_refused(server):
    base, _ = server
    status, reply = post(base, "/prompt?wait=true",
                         json.dumps({"prompt": long_chain_prompt(900, value=7)}).encode())
    assert status == 200 and reply["outputs"]["900"] == {"text": ["7.0"]}
    status, reply = post(base, "/prompt", json.dumps(
        {"prompt": long_chain_prompt(2000)}).encode())
    assert status == 400 and reply["error"]["type"] == "prompt_too_large"
    assert str(MAX_PROMPT_NODES) in reply["error"]["message"]


def test_non_finite_node_output_never_reaches_a_reply_bare(server):
    base, _ = server
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 3}},
              "2": {"class_type": "ShowRatio", "inputs": {"x": ["1", 0], "divisor": 0.0}}}
    status, reply = post(base, "/prompt", json.dumps({"prompt": prompt}).encode())
    assert status == 200
    pid = reply["prompt_id"]
    entry = wait_for(lambda: get(base, f"/history/{pid}")[1].get(pid))
    # Stored as an error naming the node, never as a bare Infinity in every later reply.
    assert entry["status"]["status_str"] == "error" and "2" not in entry["outputs"]
    kind, message = entry["status"]["messages"][-1]
    assert kind == "execution_error" and message["node_id"] == "2"
    for path in ("/history", "/queue", f"/jobs/{pid}", f"/api/history/{pid}"):
        status, _, raw = http("GET", base + path)
        assert status == 200
        strict(raw)  # refuses a bare NaN/Infinity token (the words may appear inside strings)


def test_websocket_deep_handshake_and_non_finite_events(server):
    """The socket's JSON is as strict as HTTP's: a deep first message does not kill the
    connection, and a node's non-finite ui value reaches the browser as null."""
    base, _ = server
    client_id = uuid.uuid4().hex
    ws = connect_ws(base, client_id)
    try:
        ws.send("[" * 500_000)
        prompt = {"1": {"class_type": "Const", "inputs": {"value": -4}},
                  "2": {"class_type": "ShowRatio", "inputs": {"x": ["1", 0], "divisor": 0.0}}}
        status, reply = post(base, "/prompt", json.dumps(
            {"prompt": prompt, "client_id": client_id}).encode())
        assert status == 200
        events = collect_until_done(ws, reply["prompt_id"], timeout=15)
    finally:
        ws.close()
    executed = [e for e in events if isinstance(e, dict) and e["type"] == "executed"]
    assert executed and executed[0]["data"]["output"] == {"ratio": [None]}
