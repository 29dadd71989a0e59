"""Scale-out on a local Ray cluster of 2 CPU workers, with the stub nodes (docs/scale-out.md).

One cluster and one server for the whole module (Ray starts slowly); the worker-kill tests run
last because they restart a worker.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from tests.scale_out_helpers import listening_of, ray_processes  # noqa: E402
from tests.scale_out_nodes import NODES, nodes  # noqa: E402
from tests.server_harness import (collect_until_done, connect_ws, http_json, make_config,  # noqa: E402
                                  running_server, wait_for)
from tests.stub_nodes import StubEnv, chain_prompt  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from engine.dispatch import start_ray

    start_ray(None, 2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def remote(cluster, tmp_path_factory):
    """``(base URL, app)`` of a server with 2 Ray workers, all workers up."""
    tmp = tmp_path_factory.mktemp("scale")
    config = make_config(tmp, workers=2)
    expose: dict = {}
    with running_server(config, NODES, StubEnv(config.output_dir), expose=expose,
                        nodes=nodes) as base:
        wait_for(lambda: all(w["state"] == "idle" for w in workers(base)), timeout=60)
        yield base, expose["app"], tmp


def workers(base: str) -> list[dict]:
    return http_json("GET", base + "/system_stats")[1]["workers"]


def submit(base: str, prompt: dict, client_id: str = "t") -> str:
    status, body = http_json("POST", base + "/prompt", {"prompt": prompt, "client_id": client_id})
    assert status == 200, body
    return body["prompt_id"]


def entry(base: str, prompt_id: str) -> dict | None:
    return http_json("GET", f"{base}/history/{prompt_id}")[1].get(prompt_id)


def wait_done(base: str, ids: list[str], timeout: float = 60) -> dict:
    wait_for(lambda: all(entry(base, i) for i in ids), timeout=timeout, interval=0.1)
    return {i: entry(base, i) for i in ids}


def slow_prompt(steps: int = 400, delay: float = 0.05) -> dict:
    return {"1": {"class_type": "Const", "inputs": {"value": 1}},
            "2": {"class_type": "Slow", "inputs": {"x": ["1", 0], "steps": steps, "delay": delay,
                                                   "preview": False}},
            "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}


def running_on(base: str, prompt_id: str) -> str | None:
    """The worker running `prompt_id` once its Slow node reports progress."""
    job = http_json("GET", f"{base}/jobs/{prompt_id}")[1]
    progress = job.get("progress") or {}
    return progress.get("worker") if progress.get("value") else None


def test_local_cluster_listens_on_loopback_only(remote):
    sockets = listening_of(ray_processes())
    assert sockets, "found no Ray listening sockets to check"
    wide = [s for s in sockets if s[2][0] not in ("127.0.0.1", "::ffff:127.0.0.1", "::1")]
    assert wide == []


def test_twenty_jobs_complete_on_both_workers(remote):
    base, _, tmp = remote
    ids = [submit(base, chain_prompt(value=i, steps=2, delay=0.02)) for i in range(20)]
    entries = wait_done(base, ids)
    assert all(e["status"]["status_str"] == "success" for e in entries.values())
    jobs = {j["id"]: j for j in http_json("GET", base + "/api/jobs?limit=100")[1]["jobs"]}
    assert {jobs[i]["worker"] for i in ids} == {"worker-1", "worker-2"}
    # Every image the workers made is written by the server, each under its own name.
    names = [e["outputs"]["4"]["images"][0]["filename"] for e in entries.values()]
    assert len(set(names)) == 20
    for name in names:
        data = (tmp / "output" / name).read_bytes()
        assert data.startswith(b"\x89PNG")


def test_ws_sequence_equals_in_process(remote, tmp_path):
    base, _, _ = remote
    prompt = slow_prompt(steps=3, delay=0.01)
    prompt["1"]["inputs"]["value"] = 7
    prompt["4"] = {"class_type": "Warn", "inputs": {"x": ["2", 0]}}
    prompt["5"] = {"class_type": "SaveNumberImage", "inputs": {"x": ["4", 0],
                                                               "filename_prefix": "seq"}}

    def sequence(url: str) -> list:
        client = uuid.uuid4().hex
        ws = connect_ws(url, client)
        try:
            ws.recv()  # status with sid
            pid = submit(url, prompt, client)
            events = collect_until_done(ws, pid, timeout=60)
        finally:
            ws.close()
        out = []
        for e in events:
            if isinstance(e, bytes):
                out.append(("binary",))
                continue
            data = e["data"]
            node = data.get("node", data.get("node_id"))
            extra = data.get("output") if e["type"] == "executed" else None
            out.append((e["type"], node, repr(extra)))
        return out

    config = make_config(tmp_path)
    with running_server(config, NODES, StubEnv(config.output_dir)) as local:
        expected = sequence(local)
    got = sequence(base)
    assert ("executed", "5", repr({"images": [{"filename": "seq_00001_.png", "subfolder": "",
                                               "type": "output"}]})) in got
    assert got == expected


def test_interrupt_reaches_a_running_remote_job(remote):
    base, _, _ = remote
    pid = submit(base, slow_prompt())
    wait_for(lambda: running_on(base, pid), timeout=30)
    started = time.monotonic()
    assert http_json("POST", base + "/interrupt", {"prompt_id": pid})[0] == 200
    result = wait_done(base, [pid], timeout=15)[pid]
    assert result["status"]["messages"][-1][0] == "execution_interrupted"
    assert time.monotonic() - started < 10  # not the 20 s the node would take


def test_cancel_reaches_a_running_remote_job(remote):
    base, _, _ = remote
    pid = submit(base, slow_prompt())
    wait_for(lambda: running_on(base, pid), timeout=30)
    status, body = http_json("POST", f"{base}/api/jobs/{pid}/cancel")
    assert status == 200 and body["cancelled"] is True and body["state"] == "running"
    result = wait_done(base, [pid], timeout=15)[pid]
    assert result["status"]["messages"][-1][0] == "execution_interrupted"
    job = http_json("GET", f"{base}/api/jobs/{pid}")[1]
    assert job["status"] == "cancelled"


def test_worker_holding_the_jobs_models_is_preferred(remote):
    base, _, _ = remote

    def run(file: str) -> str:
        pid = submit(base, {"1": {"class_type": "FakeLoad", "inputs": {"file": file}},
                            "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}})
        wait_done(base, [pid])
        return http_json("GET", f"{base}/api/jobs/{pid}")[1]["worker"]

    first = run("x.safetensors")
    # Both idle: least recently used would pick the other worker; the holder of x wins.
    assert run("x.safetensors") == first
    other = run("y.safetensors")  # nobody holds y: the least recently used one takes it
    assert other != first
    assert run("x.safetensors") == first
    assert run("y.safetensors") == other
    held = {w["name"]: w["models"] for w in workers(base)}
    assert "stage_c/x.safetensors" in held[first]


def test_killed_worker_errors_its_job_others_complete_and_it_comes_back(remote):
    base, _, _ = remote
    victim_id = submit(base, slow_prompt())
    name = wait_for(lambda: running_on(base, victim_id), timeout=30)
    others = [submit(base, chain_prompt(value=50 + i, steps=2, delay=0.02)) for i in range(6)]
    old_pid = next(w["pid"] for w in workers(base) if w["name"] == name)
    os.kill(old_pid, signal.SIGKILL)
    victim = wait_done(base, [victim_id], timeout=30)[victim_id]
    kind, error = victim["status"]["messages"][-1]
    assert kind == "execution_error"
    assert error["exception_type"] == "WorkerDied" and error["node_id"] == "2"
    assert name in error["exception_message"]
    assert all(e["status"]["status_str"] == "success" for e in wait_done(base, others).values())
    # Ray restarted it (a new process) and the dispatcher leases to it again.
    back = wait_for(lambda: next((w for w in workers(base) if w["name"] == name
                                  and w["state"] == "idle" and w["pid"] != old_pid), None),
                    timeout=60, interval=0.2)
    assert back["pid"] != old_pid
    more = [submit(base, chain_prompt(value=80 + i, steps=3, delay=0.05)) for i in range(4)]
    wait_done(base, more)
    jobs = {j["id"]: j["worker"] for j in http_json("GET", base + "/api/jobs?limit=200")[1]["jobs"]}
    assert name in {jobs[i] for i in more}


def scratch_of(app, name: str) -> Path | None:
    """The worker's scratch folder, as its actor reported it (None if it did not)."""
    from api.common import SERVICES

    found = next(s.info.get("scratch") for s in app[SERVICES].worker.slots if s.name == name)
    return Path(found) if found else None


def test_worker_killed_while_idle_loses_no_queued_job(remote):
    """A worker that died while idle is still "idle" to the dispatcher until a job fails on it:
    that job never reached it, so it goes back to the queue instead of ending as an error."""
    base, app, _ = remote
    wait_for(lambda: all(w["state"] == "idle" for w in workers(base)), timeout=60)
    victim = workers(base)[0]
    old_scratch = scratch_of(app, victim["name"])
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{victim['pid']}").exists(), timeout=10, interval=0.02)
    ids = [submit(base, chain_prompt(value=200 + i, steps=2, delay=0.05)) for i in range(6)]
    entries = wait_done(base, ids, timeout=90)
    assert {i: e["status"]["status_str"] for i, e in entries.items()} == \
        {i: "success" for i in ids}
    names = [e["outputs"]["4"]["images"][0]["filename"] for e in entries.values()]
    assert len(set(names)) == 6  # run once each: no duplicate images
    back = wait_for(lambda: next((w for w in workers(base) if w["name"] == victim["name"]
                                  and w["state"] == "idle" and w["pid"] != victim["pid"]), None),
                    timeout=60, interval=0.2)
    # The restarted actor removed the scratch folder its killed predecessor left behind.
    assert back and old_scratch is not None and not old_scratch.exists()
    assert scratch_of(app, victim["name"]).is_dir()


def test_stopping_the_workers_removes_their_scratch_folders(remote):
    """Runs last: stops the module server's workers as a server stop does (the fixture's own
    stop then finds nothing left to do)."""
    from api.common import SERVICES

    base, app, _ = remote
    dispatcher = app[SERVICES].worker
    folders = [scratch_of(app, slot.name) for slot in dispatcher.slots]
    assert len(folders) == 2 and all(folder and folder.is_dir() for folder in folders)
    dispatcher.stop(5.0)
    assert [folder for folder in folders if folder.exists()] == []
