"""``progress_state``: ComfyUI's per-node progress map, sent alongside ``progress``."""
import uuid

from tests.server_harness import collect_until_done, connect_ws, http_json, stub_server
from tests.stub_nodes import chain_prompt

FAIL = {"1": {"class_type": "Const", "inputs": {"value": 1}},
        "2": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "nope"}},
        "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}


def run(base, ws, cid, prompt):
    status, body = http_json("POST", base + "/prompt", {"prompt": prompt, "client_id": cid})
    assert status == 200, body
    return body["prompt_id"], collect_until_done(ws, body["prompt_id"])


def test_progress_state_tracks_each_node_to_finished(tmp_path):
    with stub_server(tmp_path) as (base, _, _):
        cid = uuid.uuid4().hex
        ws = connect_ws(base, cid)
        pid, events = run(base, ws, cid, chain_prompt(value=7, steps=2))
        states = [e["data"] for e in events if e["type"] == "progress_state"]
        kinds = [e["type"] for e in events if e["type"] in ("progress", "progress_state")]
        # Each progress step is followed by the map carrying it.
        assert kinds.count("progress") == 2
        for i, kind in enumerate(kinds):
            if kind == "progress":
                assert kinds[i + 1] == "progress_state"
        step = next(s for s in states if s["nodes"].get("2", {}).get("value") == 1)
        assert step["nodes"]["2"] == {"value": 1, "max": 2, "state": "running", "node_id": "2",
                                      "prompt_id": pid, "display_node_id": "2",
                                      "parent_node_id": None, "real_node_id": "2"}
        last = states[-1]
        assert last["prompt_id"] == pid and set(last["nodes"]) == {"1", "2", "3", "4"}
        assert all(n["state"] == "finished" and n["value"] == n["max"]
                   for n in last["nodes"].values())
        # A failing node ends in state "error"; another client never sees the map.
        other = connect_ws(base, uuid.uuid4().hex)
        _, events = run(base, ws, cid, FAIL)
        last = [e["data"] for e in events if e["type"] == "progress_state"][-1]
        assert last["nodes"]["2"]["state"] == "error"
        other.settimeout(0.3)
        seen = []
        try:
            while True:
                seen.append(other.recv())
        except Exception:
            pass
        assert not any("progress_state" in m for m in seen if isinstance(m, str))
        ws.close()
        other.close()
