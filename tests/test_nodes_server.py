"""End to end through the real server on the demo weights: the default workflow, events, PNG, cache, interrupt."""
from __future__ import annotations

import copy
import io
import json
import urllib.parse
import uuid

import pytest
from PIL import Image

from tests.nodes_helpers import demo_server, node_id, small_default
from tests.server_harness import collect_until_done, connect_ws, http, http_json, submit, wait_for


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with demo_server(tmp_path_factory.mktemp("nodes_server")) as served:
        yield served


def of_type(events: list, kind: str) -> list[dict]:
    return [e["data"] for e in events if isinstance(e, dict) and e["type"] == kind]


def test_default_workflow_runs_with_progress_previews_and_png_workflow(app):
    base, env = app
    doc = small_default(env, steps_c=3, steps_b=2)
    prompt_id, events = submit(base, doc, previews=True)
    assert of_type(events, "execution_success"), events
    c_id, b_id = node_id(doc, "StageCSampler"), node_id(doc, "StageBSampler")
    progress = of_type(events, "progress")
    assert [p["value"] for p in progress if p["node"] == c_id] == [1, 2, 3]
    assert {p["max"] for p in progress if p["node"] == c_id} == {3}
    assert [p["value"] for p in progress if p["node"] == b_id] == [1, 2]
    assert sum(isinstance(e, bytes) for e in events) == 3  # one Previewer frame per Stage C step
    _, history = http_json("GET", f"{base}/history/{prompt_id}")
    images = history[prompt_id]["outputs"][node_id(doc, "SaveImage")]["images"]
    query = urllib.parse.urlencode(images[0])
    status, headers, raw = http("GET", f"{base}/view?{query}")
    assert status == 200 and raw[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(raw)) as png:
        assert png.size == (256, 256)
        assert json.loads(png.text["workflow"]) == doc  # the exact document comes back
        prompt = json.loads(png.text["prompt"])
    assert {k: v["class_type"] for k, v in prompt.items()} == {k: v["class_type"] for k, v in doc["nodes"].items()}


def test_changing_only_stage_b_seed_reruns_only_stage_b_and_a(app):
    base, env = app
    doc = small_default(env, steps_c=2, steps_b=1)
    doc["nodes"][node_id(doc, "StageCSampler")]["inputs"]["seed"] = 7
    submit(base, doc)
    changed = copy.deepcopy(doc)
    changed["nodes"][node_id(doc, "StageBSampler")]["inputs"]["seed"] = 12345
    _, events = submit(base, changed)
    (cached,) = of_type(events, "execution_cached")
    rerun = {node_id(doc, "StageBSampler"), node_id(doc, "StageADecode"), node_id(doc, "SaveImage")}
    # Everything upstream of Stage B is served from cache (the engine may omit nodes only needed by
    # other cached nodes, e.g. the loaders); nothing downstream of it is.
    assert {node_id(doc, "StageCSampler"), node_id(doc, "LoadStageB"), node_id(doc, "LoadStageA")} <= set(cached["nodes"])
    assert not rerun & set(cached["nodes"])
    executed = {e["node"] for e in of_type(events, "executing") if e["node"] is not None}
    assert executed == rerun


def test_interrupt_mid_stage_c_stops_the_job(app):
    base, env = app
    doc = small_default(env, steps_c=400, steps_b=1)
    c_id = node_id(doc, "StageCSampler")
    doc["nodes"][c_id]["inputs"]["seed"] = 99
    cid = uuid.uuid4().hex
    ws = connect_ws(base, cid)
    try:
        status, body = http_json("POST", base + "/prompt", {"prompt": doc, "client_id": cid})
        assert status == 200, body
        seen: list = []

        def stage_c_started():
            msg = json.loads(ws.recv())
            seen.append(msg)
            return msg["type"] == "progress" and msg["data"]["node"] == c_id
        wait_for(stage_c_started, timeout=60, interval=0)
        assert http_json("POST", base + "/interrupt", {})[0] == 200
        events = seen + collect_until_done(ws, body["prompt_id"], timeout=60)
    finally:
        ws.close()
    (stopped,) = of_type(events, "execution_interrupted")
    assert stopped["node_id"] == c_id
    assert not of_type(events, "execution_success")
    assert max(p["value"] for p in of_type(events, "progress") if p["node"] == c_id) < 400
    assert node_id(doc, "StageBSampler") not in {e["node"] for e in of_type(events, "executing")}


def test_missing_weights_file_is_a_validation_error_naming_it(app):
    base, env = app
    doc = small_default(env)
    loader = node_id(doc, "LoadStageC")
    doc["nodes"][loader]["inputs"]["file"] = "stage_c_bf16.safetensors"
    status, body = http_json("POST", base + "/prompt", {"prompt": doc})
    assert status == 400
    reasons = body["node_errors"][loader]["errors"]
    assert any("stage_c_bf16.safetensors" in r["details"] for r in reasons), reasons


def test_second_prompt_reuses_resident_models(app):
    base, env = app
    doc = small_default(env, steps_c=1, steps_b=1)
    submit(base, doc)
    loads = env.models.loads
    http_json("POST", base + "/free", {"free_memory": True})  # drop the executor's cache: loaders re-run
    doc["nodes"][node_id(doc, "StageCSampler")]["inputs"]["seed"] = 4242
    _, events = submit(base, doc)
    assert of_type(events, "execution_success")
    assert node_id(doc, "LoadStageC") in {e["node"] for e in of_type(events, "executing")}
    assert env.models.loads == loads  # loaders ran again but every model came from residency


def test_missing_weights_file_error_says_where_the_file_belongs(app):
    base, env = app
    doc = small_default(env)
    loader = node_id(doc, "LoadStageB")
    doc["nodes"][loader]["inputs"]["file"] = "stage_b_lite_bf16.safetensors"
    status, body = http_json("POST", base + "/prompt", {"prompt": doc})
    assert status == 400
    reasons = body["node_errors"][loader]["errors"]
    assert [r["type"] for r in reasons] == ["value_not_in_list", "custom_validation_failed"]
    guidance = reasons[1]["details"]
    assert "stage_b_lite_bf16.safetensors" in guidance and "stage_b" in guidance and "GB" in guidance


def test_editor_default_workflow_is_fitted_to_the_weights_on_disk(app):
    base, env = app
    status, doc = http_json("GET", base + "/workflows/default.json")
    assert status == 200
    files = {n["class_type"]: n["inputs"]["file"] for n in doc["nodes"].values() if "file" in n["inputs"]}
    assert files["LoadStageC"] == "demo_stage_c.safetensors"  # demo mode: never the absent official file
    assert all(name.startswith("demo_") for name in files.values()), files
    status, body = http_json("POST", base + "/prompt", {"prompt": doc})
    assert status == 200 and not body["node_errors"], body
    http_json("POST", base + "/queue", {"delete": [body["prompt_id"]]})
