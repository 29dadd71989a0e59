"""Durability through the server: pending jobs, pause state and history survive a restart."""
from tests.server_harness import http, http_json, stub_server, wait_for
from tests.stub_nodes import chain_prompt


def test_pending_jobs_and_history_survive_restart(tmp_path):
    with stub_server(tmp_path) as (base, _, _):
        done = http_json("POST", base + "/prompt?wait=true", {"prompt": chain_prompt(value=1)})[1]
        image = done["outputs"]["4"]["images"][0]
        http_json("POST", base + "/queue", {"pause": True})
        ids = [http_json("POST", base + "/prompt", {"prompt": chain_prompt(value=v)})[1]["prompt_id"]
               for v in (2, 3)]
    with stub_server(tmp_path) as (base, env, _):
        queue = http_json("GET", base + "/queue")[1]
        assert [item[1] for item in queue["queue_pending"]] == ids and queue["paused"]
        entry = http_json("GET", f"{base}/history/{done['prompt_id']}")[1][done["prompt_id"]]
        assert entry["outputs"]["4"]["images"][0] == image
        status, _, raw = http("GET", f"{base}/view?filename={image['filename']}")
        assert status == 200 and raw[:4] == b"\x89PNG"
        http_json("POST", base + "/queue", {"pause": False})
        for pid in ids:
            wait_for(lambda: http_json("GET", f"{base}/history/{pid}")[1])
        assert [n for _, n in env.runs].count("SaveNumberImage") == 2


def test_job_running_at_shutdown_is_recorded_interrupted(tmp_path):
    with stub_server(tmp_path) as (base, env, _):
        pid = http_json("POST", base + "/prompt",
                        {"prompt": chain_prompt(value=5, steps=1000, delay=0.01)})[1]["prompt_id"]
        wait_for(env.started.is_set)
    with stub_server(tmp_path) as (base, _, _):
        job = http_json("GET", f"{base}/jobs/{pid}")[1]
        assert job["state"] == "done" and job["status"] == "interrupted"
        assert http_json("GET", base + "/queue")[1]["queue_running"] == []
