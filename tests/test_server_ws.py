"""WebSocket message order, routing, errors, interrupts and opt-in binary previews."""
import io
import json
import struct
import uuid

import pytest
from PIL import Image

from tests.server_harness import collect_until_done, connect_ws, http_json, stub_server, wait_for
from tests.stub_nodes import chain_prompt


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with stub_server(tmp_path_factory.mktemp("ws")) as running:
        yield running


def submit(base, prompt, client_id):
    status, body = http_json("POST", base + "/prompt", {"prompt": prompt, "client_id": client_id})
    assert status == 200, body
    return body["prompt_id"]


def kinds(events):
    return [e["type"] if isinstance(e, dict) else "binary" for e in events]


def preview_prompt(seed):
    prompt = chain_prompt(value=seed, steps=3)
    prompt["2"]["inputs"]["preview"] = True
    return prompt


def test_status_on_connect_and_full_sequence_then_cached_rerun(server):
    base, env, _ = server
    cid = uuid.uuid4().hex
    ws = connect_ws(base, cid)
    first = json.loads(ws.recv())
    assert first["type"] == "status" and first["data"]["sid"] == cid
    assert "queue_remaining" in first["data"]["status"]["exec_info"]
    prompt = chain_prompt(value=42, steps=2)
    pid = submit(base, prompt, cid)
    # progress_state (ComfyUI's newer per-node map) has its own test in test_server_progress_state.
    events = [e for e in collect_until_done(ws, pid) if e["type"] not in ("status",
                                                                           "progress_state")]
    assert kinds(events) == ["execution_start", "execution_cached", "executing", "executing",
                             "progress", "progress", "executing", "executing", "executed",
                             "execution_success", "executing"]
    assert [e["data"]["node"] for e in events if e["type"] == "executing"] == ["1", "2", "3", "4",
                                                                               None]
    assert events[4]["data"] == {"value": 1, "max": 2, "prompt_id": pid, "node": "2"}
    executed = events[8]["data"]
    assert executed["node"] == "4" and executed["output"]["images"][0]["type"] == "output"
    # The end marker comes after history is written: fetching it now must succeed.
    assert http_json("GET", f"{base}/history/{pid}")[1][pid]["status"]["completed"]
    prompt["3"]["inputs"]["factor"] = 4.0
    pid2 = submit(base, prompt, cid)
    events = [e for e in collect_until_done(ws, pid2) if e["type"] != "status"]
    cached = [e for e in events if e["type"] == "execution_cached"][0]["data"]["nodes"]
    assert cached == ["1", "2"]
    assert [e["data"]["node"] for e in events if e["type"] == "executing"] == ["3", "4", None]
    ws.close()


def test_failing_node_sends_execution_error_and_server_keeps_serving(server):
    base, _, _ = server
    cid = uuid.uuid4().hex
    ws = connect_ws(base, cid)
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 9}},
              "2": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "nope"}},
              "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}
    pid = submit(base, prompt, cid)
    events = [e for e in collect_until_done(ws, pid) if e["type"] != "status"]
    error = [e for e in events if e["type"] == "execution_error"][0]["data"]
    assert error["node_id"] == "2" and error["node_type"] == "Fail"
    assert error["exception_message"] == "nope" and error["traceback"]
    assert kinds(events)[-2:] == ["execution_error", "executing"]
    entry = http_json("GET", f"{base}/history/{pid}")[1][pid]
    assert entry["status"]["status_str"] == "error"
    pid = submit(base, chain_prompt(value=77), cid)  # still serving
    assert kinds(collect_until_done(ws, pid))[-2:] == ["execution_success", "executing"]
    ws.close()


def test_interrupt_is_broadcast_and_stops_mid_node(server):
    base, env, _ = server
    owner, other = uuid.uuid4().hex, uuid.uuid4().hex
    ws, ws_other = connect_ws(base, owner), connect_ws(base, other)
    env.started.clear()
    pid = submit(base, chain_prompt(value=55, steps=1000, delay=0.01), owner)
    wait_for(env.started.is_set)
    http_json("POST", base + "/interrupt", {})
    events = collect_until_done(ws, pid)
    progress = [e["data"]["value"] for e in events if e["type"] == "progress"]
    assert len(progress) < 1000
    interrupted = [e for e in events if e["type"] == "execution_interrupted"][0]["data"]
    assert interrupted["node_id"] == "2" and interrupted["executed"] == ["1"]
    seen = []
    while "execution_interrupted" not in seen:
        seen.append(json.loads(ws_other.recv())["type"])
    assert "executing" not in seen  # per-prompt events stay with their client
    ws.close()
    ws_other.close()


def test_no_previews_by_default_type4_with_handshake_type1_on_request(server):
    base, _, _ = server
    plain, meta, legacy = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    ws = connect_ws(base, plain)
    pid = submit(base, preview_prompt(1), plain)
    assert "binary" not in kinds(collect_until_done(ws, pid))
    ws.close()

    ws = connect_ws(base, meta)
    ws.recv()  # status
    ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    flags = json.loads(ws.recv())
    while flags["type"] == "status":  # queue broadcasts may interleave
        flags = json.loads(ws.recv())
    assert flags == {"type": "feature_flags",
                     "data": {"supports_preview_metadata": True,
                              "max_upload_size": server[2].max_body_bytes}}
    pid = submit(base, preview_prompt(2), meta)
    frames = [e for e in collect_until_done(ws, pid) if isinstance(e, bytes)]
    assert 1 <= len(frames) <= 3  # an unsent preview is replaced by the node's newer one
    kind, length = struct.unpack(">II", frames[0][:8])
    info = json.loads(frames[0][8:8 + length])
    assert kind == 4 and info["node_id"] == "2" and info["prompt_id"] == pid
    assert info["image_type"] == "image/jpeg"
    assert Image.open(io.BytesIO(frames[0][8 + length:])).format == "JPEG"
    last = frames[-1]
    newest = Image.open(io.BytesIO(last[8 + struct.unpack(">II", last[:8])[1]:]))
    assert abs(newest.getpixel((8, 8))[0] - 40) < 8  # the last step's picture always arrives
    ws.close()

    ws = connect_ws(base, legacy, "&previews=1")
    pid = submit(base, preview_prompt(3), legacy)
    frames = [e for e in collect_until_done(ws, pid) if isinstance(e, bytes)]
    assert 1 <= len(frames) <= 3 and struct.unpack(">II", frames[0][:8]) == (1, 1)
    assert Image.open(io.BytesIO(frames[0][8:])).format == "JPEG"  # ComfyUI example: out[8:]
    ws.close()


def test_reconnect_during_run_gets_current_node(server):
    base, env, _ = server
    cid = uuid.uuid4().hex
    ws = connect_ws(base, cid)
    env.started.clear()
    pid = submit(base, chain_prompt(value=66, steps=1000, delay=0.01), cid)
    wait_for(env.started.is_set)
    ws.close()
    ws = connect_ws(base, cid)
    assert json.loads(ws.recv())["type"] == "status"
    msg = json.loads(ws.recv())
    while msg["type"] != "executing":
        msg = json.loads(ws.recv())
    assert msg["data"]["node"] == "2" and msg["data"]["prompt_id"] == pid
    http_json("POST", base + "/interrupt", {"prompt_id": pid})
    collect_until_done(ws, pid)
    ws.close()


def test_prompt_without_client_id_sends_no_progress(server):
    base, _, _ = server
    watcher = uuid.uuid4().hex
    ws = connect_ws(base, watcher)
    status, body = http_json("POST", base + "/prompt?wait=true", {"prompt": chain_prompt(value=88)})
    assert status == 200
    pid = submit(base, chain_prompt(value=89), watcher)  # then one of ours, to bound the read
    events = collect_until_done(ws, pid)
    assert all(e["data"].get("prompt_id") in (None, pid) for e in events if isinstance(e, dict))
    ws.close()
