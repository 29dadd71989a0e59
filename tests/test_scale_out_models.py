"""Scale-out with the real nodes on tiny demo weights: 2 Ray CPU workers (docs/scale-out.md)."""
from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from tests.nodes_helpers import demo_env, demo_server, node_id, small_default, tmp_config  # noqa: E402
from tests.server_harness import http, http_json, running_server, submit, wait_for  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    from engine.dispatch import start_ray
    from nodes.registry import NODES
    from server import load_nodes

    start_ray(None, 2)
    config = tmp_config(tmp_path_factory.mktemp("scale_models"), workers=2)
    env = demo_env(config)
    try:
        with running_server(config, NODES, env, nodes=load_nodes) as base:
            wait_for(lambda: all(w["state"] == "idle" for w in
                                 http_json("GET", base + "/system_stats")[1]["workers"]), timeout=90)
            yield base, env
    finally:
        ray.shutdown()


def shape(events: list) -> list:
    """The ordered (type, node) sequence; binary preview frames as one kind; file names kept."""
    out = []
    for e in events:
        if isinstance(e, bytes):
            out.append(("preview",))
        else:
            data = e["data"]
            out.append((e["type"], data.get("node", data.get("node_id")),
                        repr(data.get("output")) if e["type"] == "executed" else None))
    return out


def doc_with_seed(env, seed: int) -> dict:
    doc = small_default(env, steps_c=1, steps_b=1, size=256)
    doc["nodes"][node_id(doc, "StageCSampler")]["inputs"]["seed"] = seed
    return doc


def test_real_jobs_same_messages_as_in_process_and_the_model_holder_is_preferred(remote, tmp_path):
    base, env = remote
    doc = doc_with_seed(env, 11)
    first_id, got = submit(base, doc, previews=True, timeout=180)
    with demo_server(tmp_path) as (local, local_env):
        _, expected = submit(local, doc_with_seed(local_env, 11), previews=True, timeout=180)
    assert ("execution_success", None, None) in shape(got)
    assert shape(got) == shape(expected)
    # The image was made by a worker and written by the server; /view serves it.
    images = http_json("GET", f"{base}/history/{first_id}")[1][first_id]["outputs"][
        node_id(doc, "SaveImage")]["images"]
    status, _, raw = http("GET", base + "/view?filename=" + images[0]["filename"] + "&type=output")
    assert status == 200 and raw[:8] == b"\x89PNG\r\n\x1a\n"
    jobs = lambda: {j["id"]: j["worker"] for j in http_json("GET", base + "/api/jobs")[1]["jobs"]}  # noqa: E731
    holder = jobs()[first_id]
    stats = {w["name"]: w for w in http_json("GET", base + "/system_stats")[1]["workers"]}
    assert any("demo_stage_c" in m for m in stats[holder]["models"])
    # Both idle, the other one least recently used: the worker holding the models still wins.
    second_id, _ = submit(base, doc_with_seed(env, 12), previews=True, timeout=180)
    assert jobs()[second_id] == holder


def test_real_jobs_queued_together_run_on_both_workers(remote):
    base, env = remote
    ids = []
    for seed in range(20, 24):
        status, body = http_json("POST", base + "/prompt", {"prompt": doc_with_seed(env, seed)})
        assert status == 200, body
        ids.append(body["prompt_id"])
    wait_for(lambda: all(http_json("GET", f"{base}/history/{i}")[1] for i in ids),
             timeout=240, interval=0.2)
    entries = [http_json("GET", f"{base}/history/{i}")[1][i] for i in ids]
    assert all(e["status"]["status_str"] == "success" for e in entries)
    workers = {j["id"]: j["worker"] for j in http_json("GET", base + "/api/jobs")[1]["jobs"]}
    assert {workers[i] for i in ids} == {"worker-1", "worker-2"}


def test_interrupt_reaches_a_real_job_mid_stage_c(remote):
    base, env = remote
    doc = small_default(env, steps_c=200, steps_b=1, size=256)
    status, body = http_json("POST", base + "/prompt", {"prompt": doc})
    assert status == 200, body
    pid = body["prompt_id"]
    c_id = node_id(doc, "StageCSampler")

    def in_stage_c():
        progress = http_json("GET", f"{base}/jobs/{pid}")[1].get("progress") or {}
        return progress.get("node") == c_id and progress.get("value", 0) >= 1

    wait_for(in_stage_c, timeout=120, interval=0.1)
    assert http_json("POST", base + "/interrupt", {"prompt_id": pid})[0] == 200
    wait_for(lambda: http_json("GET", f"{base}/history/{pid}")[1], timeout=60, interval=0.1)
    entry = http_json("GET", f"{base}/history/{pid}")[1][pid]
    kind, data = entry["status"]["messages"][-1]
    assert kind == "execution_interrupted" and data["node_id"] == c_id


def test_workers_start_with_the_allocator_settings(remote):
    # glibc reads these at a process's start; tune() inside a Ray worker would come after Ray's own
    # threads had allocated, too late for the arena setting (runtime/allocator.py).
    from runtime import allocator

    base, _ = remote
    for worker in http_json("GET", base + "/system_stats")[1]["workers"]:
        raw = open(f"/proc/{worker['pid']}/environ", "rb").read().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        assert {k: env.get(k) for k in allocator.child_env()} == allocator.child_env() != {}
