"""ComfyUI's jobs API: list (filter, sort, page), one job, idempotent cancel (single, batch)."""
import pytest

from tests.server_harness import http_json, stub_server, wait_for
from tests.stub_nodes import chain_prompt

FAIL = {"1": {"class_type": "Const", "inputs": {"value": 1}},
        "2": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "nope"}},
        "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with stub_server(tmp_path_factory.mktemp("jobs")) as (base, env, _):
        yield base, env


def run(base, prompt, pid):
    status, reply = http_json("POST", base + "/prompt?wait=true", {"prompt": prompt,
                                                                   "prompt_id": pid})
    assert status == 200, reply


def statuses(base, query=""):
    status, body = http_json("GET", base + "/api/jobs" + query)
    assert status == 200, body
    return {job["id"]: job["status"] for job in body["jobs"]}, body


def test_every_status_word_filter_sort_and_pages(server):
    base, env = server
    http_json("POST", base + "/history", {"clear": True})
    run(base, chain_prompt(value=5), "ok")
    run(base, FAIL, "bad")
    env.started.clear()
    http_json("POST", base + "/prompt", {"prompt": chain_prompt(steps=1000, delay=0.01),
                                         "prompt_id": "stopped"})
    wait_for(env.started.is_set)
    wait_for(lambda: statuses(base)[0].get("stopped") == "in_progress")
    assert http_json("POST", base + "/api/jobs/stopped/cancel")[1]["cancelled"] is True
    wait_for(lambda: statuses(base)[0].get("stopped") == "cancelled")
    http_json("POST", base + "/queue", {"pause": True})
    for pid in ("waiting", "dropped"):
        http_json("POST", base + "/prompt", {"prompt": chain_prompt(), "prompt_id": pid})
    assert http_json("POST", base + "/jobs/dropped/cancel")[1] == {
        "prompt_id": "dropped", "cancelled": True, "state": "pending"}
    seen, body = statuses(base)
    assert seen == {"ok": "completed", "bad": "failed", "stopped": "cancelled",
                    "waiting": "pending", "dropped": "cancelled"}
    # Newest first by default; asc reverses; ComfyUI's record fields are there.
    assert [j["id"] for j in body["jobs"]] == ["dropped", "waiting", "stopped", "bad", "ok"]
    ok = next(j for j in body["jobs"] if j["id"] == "ok")
    assert ok["outputs_count"] == 1 and ok["preview_output"]["nodeId"] == "4"
    assert ok["preview_output"]["filename"].startswith("t_") and isinstance(ok["create_time"], int)
    bad = next(j for j in body["jobs"] if j["id"] == "bad")
    assert bad["execution_error"]["exception_message"] == "nope"
    asc, _ = statuses(base, "?sort_order=asc")
    assert list(asc) == ["ok", "bad", "stopped", "waiting", "dropped"]
    only, _ = statuses(base, "?status=cancelled,failed")
    assert set(only) == {"stopped", "dropped", "bad"}
    _, page = statuses(base, "?limit=2&offset=1")
    assert [j["id"] for j in page["jobs"]] == ["waiting", "stopped"]
    assert page["pagination"] == {"offset": 1, "limit": 2, "total": 5, "has_more": True}
    _, last = statuses(base, "?limit=2&offset=4")
    assert last["pagination"]["has_more"] is False and len(last["jobs"]) == 1
    # ComfyUI's /queue and /history do not see the cancelled pending job.
    assert "dropped" not in http_json("GET", base + "/history")[1]
    assert [i[1] for i in http_json("GET", base + "/queue")[1]["queue_pending"]] == ["waiting"]
    http_json("POST", base + "/queue", {"clear": True, "pause": False})


def test_one_job_bare_keeps_old_words_api_speaks_comfyui(server):
    base, _ = server
    run(base, chain_prompt(value=2), "one")
    status, bare = http_json("GET", base + "/jobs/one")
    status2, api = http_json("GET", base + "/api/jobs/one")
    assert status == status2 == 200
    assert bare["status"] == "success" and api["status"] == "completed"
    assert bare["comfy_status"] == api["comfy_status"] == "completed"
    assert api["state"] == "done" and api["outputs"]["4"]["images"][0]["type"] == "output"
    assert api["workflow"]["prompt"]["1"]["class_type"] == "Const"
    assert api["execution_status"]["status_str"] == "success"
    assert http_json("GET", base + "/api/jobs/nope")[0] == 404


def test_cancel_is_idempotent_and_a_cancelled_id_can_be_reused(server):
    base, _ = server
    http_json("POST", base + "/queue", {"pause": True})
    http_json("POST", base + "/prompt", {"prompt": chain_prompt(), "prompt_id": "twice"})
    first = http_json("POST", base + "/api/jobs/twice/cancel")
    again = http_json("POST", base + "/api/jobs/twice/cancel")
    unknown = http_json("POST", base + "/api/jobs/never-seen/cancel")
    assert first[1]["cancelled"] is True and again == (200, {
        "prompt_id": "twice", "cancelled": False, "state": "cancelled"})
    assert unknown == (200, {"prompt_id": "never-seen", "cancelled": False, "state": "unknown"})
    assert http_json("GET", base + "/jobs/twice")[1]["state"] == "cancelled"
    # The cancelled record does not hold the id.
    assert http_json("POST", base + "/prompt", {"prompt": chain_prompt(),
                                                "prompt_id": "twice"})[0] == 200
    assert http_json("GET", base + "/jobs/twice")[1]["state"] == "pending"
    http_json("POST", base + "/queue", {"clear": True, "pause": False})


def test_batch_cancel(server):
    base, _ = server
    http_json("POST", base + "/queue", {"pause": True})
    for pid in ("b1", "b2", "b3"):
        http_json("POST", base + "/prompt", {"prompt": chain_prompt(), "prompt_id": pid})
    status, reply = http_json("POST", base + "/api/jobs/cancel",
                              {"job_ids": ["b1", "b3", "b1", "ghost"]})
    assert status == 200 and reply["cancelled"] is True
    assert [(j["prompt_id"], j["cancelled"]) for j in reply["jobs"]] == [
        ("b1", True), ("b3", True), ("ghost", False)]
    assert [i[1] for i in http_json("GET", base + "/queue")[1]["queue_pending"]] == ["b2"]
    assert http_json("POST", base + "/jobs/cancel", {"job_ids": ["b1"]})[1]["cancelled"] is False
    http_json("POST", base + "/queue", {"clear": True, "pause": False})


@pytest.mark.parametrize("path, body, word", [
    ("/api/jobs?status=done", None, "status"), ("/api/jobs?sort_by=name", None, "sort_by"),
    ("/api/jobs?sort_order=up", None, "sort_order"), ("/api/jobs?limit=0", None, "limit"),
    ("/api/jobs?limit=x", None, "limit"), ("/api/jobs?offset=-1", None, "offset"),
    ("/api/jobs/cancel", {}, "job_ids"), ("/api/jobs/cancel", {"job_ids": [1]}, "job_ids"),
    ("/api/jobs/cancel", {"job_ids": ["a"] * 1001}, "job_ids"),
])
def test_bad_input_is_a_400_naming_it(server, path, body, word):
    base, _ = server
    status, reply = http_json("POST" if body is not None else "GET", base + path, body)
    assert status == 400 and word in reply["error"]["message"], reply
