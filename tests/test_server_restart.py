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


def test_sigkill_mid_node_then_restart_runs_pending_and_records_interrupted(tmp_path):
    """A real crash: the process is SIGKILLed while a node runs, then restarted on its data."""
    import signal

    from tests.server_harness import server_args, server_process

    args, logs = server_args(tmp_path), tmp_path / "logs"
    with server_process(args, logs) as srv:
        base = srv.base
        done = http_json("POST", base + "/prompt?wait=true",
                         {"prompt": chain_prompt(value=7), "number": 78})[1]
        image = done["outputs"]["4"]["images"][0]
        killed = http_json("POST", base + "/prompt", {
            "prompt": chain_prompt(value=8, steps=1000, delay=0.01)})[1]["prompt_id"]
        waiting = [http_json("POST", base + "/prompt", {"prompt": chain_prompt(value=v)})[1]
                   ["prompt_id"] for v in (9, 10)]
        wait_for(lambda: [i[1] for i in http_json("GET", base + "/queue")[1]["queue_running"]]
                 == [killed])
        srv.proc.send_signal(signal.SIGKILL)
        assert srv.proc.wait(10) == -signal.SIGKILL
    image_bytes = (tmp_path / "output" / image["filename"]).read_bytes()
    with server_process(args, logs) as srv:
        base = srv.base
        for pid in waiting:
            entry = wait_for(lambda: http_json("GET", f"{base}/history/{pid}")[1])[pid]
            assert entry["status"]["completed"]
        job = http_json("GET", f"{base}/jobs/{killed}")[1]
        assert job["state"] == "done" and job["status"] == "interrupted"
        history = http_json("GET", base + "/history")[1]
        assert history[done["prompt_id"]]["outputs"]["4"]["images"][0] == image
        assert history[killed]["prompt"][0] == 2 and type(history[killed]["prompt"][0]) is int
        assert history[done["prompt_id"]]["prompt"][0] == 78
        status, _, raw = http("GET", f"{base}/view?filename={image['filename']}")
        assert status == 200 and raw == image_bytes
        assert http_json("GET", base + "/queue")[1]["queue_running"] == []
