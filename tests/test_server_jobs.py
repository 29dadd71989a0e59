"""?wait=true always answers; duplicate ids under concurrency; nothing non-finite is stored."""
import json
import threading

import pytest

from tests.server_harness import http, http_json, stub_server, wait_for
from tests.stub_nodes import chain_prompt


def wait_in_thread(base, payload, timeout=10):
    """POST /prompt?wait=true in a thread; returns (thread, result dict filled when answered)."""
    result = {}

    def run():
        result["reply"] = http_json("POST", base + "/prompt?wait=true", payload, timeout=timeout)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def job_state(base, pid):
    status, body = http_json("GET", f"{base}/jobs/{pid}")
    return body["state"] if status == 200 else None


REMOVALS = {
    "cancel": lambda base, pid: http_json("POST", f"{base}/jobs/{pid}/cancel", {}),
    "delete": lambda base, pid: http_json("POST", base + "/queue", {"delete": [pid]}),
    "clear": lambda base, pid: http_json("POST", base + "/queue", {"clear": True}),
}


@pytest.mark.parametrize("how", sorted(REMOVALS))
def test_wait_answers_when_pending_job_is_removed(tmp_path, how):
    with stub_server(tmp_path) as (base, _, _):
        http_json("POST", base + "/queue", {"pause": True})
        thread, result = wait_in_thread(base, {"prompt": chain_prompt(), "prompt_id": "w1"})
        wait_for(lambda: job_state(base, "w1") == "pending")
        REMOVALS[how](base, "w1")
        thread.join(5)
        status, body = result["reply"]
        assert status == 200 and body["state"] == "cancelled" and body["prompt_id"] == "w1"
        assert body["outputs"] == {} and body["status"]["completed"] is False


def test_wait_answers_an_interrupted_job_with_its_history(tmp_path):
    with stub_server(tmp_path) as (base, env, _):
        thread, result = wait_in_thread(base, {"prompt": chain_prompt(steps=1000, delay=0.01),
                                               "prompt_id": "w2"})
        wait_for(env.started.is_set)
        http_json("POST", base + "/interrupt", {})
        thread.join(5)
        status, body = result["reply"]
        assert status == 200 and body["state"] == "done"
        assert body["status"]["messages"][-1][0] == "execution_interrupted"


def test_wait_has_a_server_side_upper_bound(tmp_path):
    with stub_server(tmp_path, wait_max_s=0.3) as (base, _, _):
        http_json("POST", base + "/queue", {"pause": True})
        status, body = http_json("POST", base + "/prompt?wait=true&timeout=1000",
                                 {"prompt": chain_prompt()}, timeout=5)
        assert status == 202 and body["state"] == "pending"


def test_wait_is_answered_at_shutdown(tmp_path):
    with stub_server(tmp_path) as (base, _, _):
        http_json("POST", base + "/queue", {"pause": True})
        thread, result = wait_in_thread(base, {"prompt": chain_prompt(), "prompt_id": "w3"})
        wait_for(lambda: job_state(base, "w3") == "pending")
    thread.join(5)
    status, body = result["reply"]
    assert status == 202 and body["state"] == "pending"


def test_concurrent_duplicate_prompt_id_one_wins_others_400(tmp_path):
    with stub_server(tmp_path) as (base, _, _):
        http_json("POST", base + "/queue", {"pause": True})
        for round_ in range(5):
            barrier, statuses = threading.Barrier(4), []

            def post():
                barrier.wait()
                statuses.append(http_json("POST", base + "/prompt", {
                    "prompt": chain_prompt(), "prompt_id": f"dup{round_}"})[0])

            threads = [threading.Thread(target=post) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            assert sorted(statuses) == [200, 400, 400, 400], statuses


@pytest.mark.parametrize("body", [
    b'{"prompt": %s, "number": NaN}', b'{"prompt": %s, "number": Infinity}',
    b'{"prompt": %s, "number": 1e400}', b'{"prompt": %s, "number": 1' + b"0" * 400 + b"}",
    b'{"prompt": %s, "extra_data": {"x": -Infinity}}',
])
def test_non_finite_numbers_are_400_and_never_reach_a_reply(tmp_path, body):
    with stub_server(tmp_path) as (base, _, _):
        http_json("POST", base + "/queue", {"pause": True})
        raw = body % json.dumps(chain_prompt()).encode()
        status, _, reply = http("POST", base + "/prompt", raw,
                                {"Content-Type": "application/json"})
        assert status == 400, reply
        for route in ("/queue", "/history", "/prompt"):
            status, _, text = http("GET", base + route)
            assert status == 200
            json.loads(text, parse_constant=lambda c: pytest.fail(f"{route} carries {c}"))
