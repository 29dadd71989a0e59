"""Scale-out pieces that need no Ray cluster: the default imports no Ray, the flags, the files
shipped between the server and a worker (engine/shipping.py, engine/remote.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config import PROJECT_ROOT, Config
from engine.remote import RemoteWorker
from engine.shipping import OutputWriter, collect_inputs
from tests.scale_out_nodes import nodes
from tests.server_harness import http_json, make_config, running_server
from tests.stub_nodes import STUB_NODES, StubEnv


def test_default_server_imports_no_ray(tmp_path):
    """A real server.py process in default mode, serving a job: ray never imported."""
    code = f"""
import sys, threading, time, urllib.request, json
sys.argv = ["server.py", "--port", "0", "--data", {str(tmp_path / 'user')!r},
            "--output", {str(tmp_path / 'out')!r}, "--temp", {str(tmp_path / 'temp')!r},
            "--input", {str(tmp_path / 'in')!r}, "--no-hf-cache"]
import server
from tests.stub_server_main import stub_nodes
server.load_nodes = stub_nodes
from aiohttp import web
run = web.run_app
def fake_run(app, sock, **kw):  # serve one job, then report the imported modules
    threading.Thread(target=lambda: run(app, sock=sock, handle_signals=False, print=None),
                     daemon=True).start()
    base = "http://127.0.0.1:%d" % sock.getsockname()[1]
    time.sleep(0.5)
    req = urllib.request.Request(base + "/prompt", method="POST", data=json.dumps({{"prompt": {{
        "1": {{"class_type": "Const", "inputs": {{"value": 2}}}},
        "2": {{"class_type": "Show", "inputs": {{"x": ["1", 0]}}}}}}}}).encode(),
        headers={{"Content-Type": "application/json"}})
    pid = json.load(urllib.request.urlopen(req))["prompt_id"]
    for _ in range(100):
        if json.load(urllib.request.urlopen(base + "/history/" + pid)):
            break
        time.sleep(0.05)
    stats = json.load(urllib.request.urlopen(base + "/system_stats"))
    print("WORKERS", json.dumps(stats["workers"]))
    print("RAY", sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
web.run_app = fake_run
server.main()
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=60)
    assert "RAY []" in out.stdout, out.stdout + out.stderr
    assert '"name": "local"' in out.stdout and '"kind": "in-process"' in out.stdout


def test_workers_flags():
    assert Config.from_cli(["--no-hf-cache"]).workers == 0
    config = Config.from_cli(["--workers", "3", "--no-hf-cache"])
    assert (config.workers, config.ray_address) == (3, None)
    joined = Config.from_cli(["--ray-address", "10.0.0.5:6379", "--no-hf-cache"])
    assert (joined.workers, joined.ray_address) == (1, "10.0.0.5:6379")
    for bad in ("0", "65", "-1"):
        with pytest.raises(SystemExit):
            Config.from_cli(["--workers", bad, "--no-hf-cache"])


def test_api_jobs_names_the_local_worker(tmp_path):
    config = make_config(tmp_path)
    with running_server(config, STUB_NODES, StubEnv(config.output_dir)) as base:
        status, body = http_json("POST", base + "/prompt", {"prompt": {
            "1": {"class_type": "Const", "inputs": {"value": 2}},
            "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}}})
        pid = body["prompt_id"]
        from tests.server_harness import wait_for
        wait_for(lambda: http_json("GET", f"{base}/history/{pid}")[1])
        assert http_json("GET", f"{base}/api/jobs/{pid}")[1]["worker"] == "local"
        assert http_json("GET", f"{base}/api/jobs")[1]["jobs"][0]["worker"] == "local"


def test_collect_inputs_ships_named_input_files_only(tmp_path):
    (tmp_path / "in" / "clipspace").mkdir(parents=True)
    (tmp_path / "in" / "a.png").write_bytes(b"A")
    (tmp_path / "in" / "clipspace" / "m.png").write_bytes(b"MM")
    (tmp_path / "secret.txt").write_bytes(b"no")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png [input]"}},
              "2": {"class_type": "LoadImageMask", "inputs": {"image": "clipspace/m.png"}},
              "3": {"class_type": "X", "inputs": {"text": "../secret.txt", "n": 3, "l": ["1", 0]}}}
    assert collect_inputs(tmp_path / "in", prompt, 100) == {"a.png": b"A", "clipspace/m.png": b"MM"}
    with pytest.raises(ValueError, match="larger than 2 bytes"):
        collect_inputs(tmp_path / "in", prompt, 2)


def test_output_writer_never_overwrites_and_renames_cached_refs(tmp_path):
    writer = OutputWriter({"output": tmp_path / "out", "temp": tmp_path / "temp"})
    ui = {"images": [{"filename": "img_00001_.png", "subfolder": "a", "type": "output"}]}
    first = writer.place("w1", ui, {("output", "a", "img_00001_.png"): b"one"})
    second = writer.place("w2", ui, {("output", "a", "img_00001_.png"): b"two"})
    assert first["images"][0]["filename"] == "img_00001_.png"
    assert second["images"][0]["filename"] == "img_00002_.png"
    assert (tmp_path / "out" / "a" / "img_00001_.png").read_bytes() == b"one"
    assert (tmp_path / "out" / "a" / "img_00002_.png").read_bytes() == b"two"
    # A cached result re-announced by w2 without bytes names the server's copy.
    assert writer.rename("w2", ui) == second
    with pytest.raises(ValueError, match="outside"):
        writer.place("w1", ui, {("output", "../..", "x.png"): b"x"})


def test_remote_worker_runs_in_scratch_and_ships_bytes_once(tmp_path):
    """The actor class itself, without Ray: files come back as bytes, the server's folders
    are untouched, and a second run re-announcing a cached output ships nothing again."""
    config = make_config(tmp_path)
    worker = RemoteWorker("w", nodes, config)
    try:
        prompt = {"1": {"class_type": "Const", "inputs": {"value": 9}},
                  "2": {"class_type": "SaveNumberImage", "inputs": {"x": ["1", 0],
                                                                    "filename_prefix": "z"}}}
        items = list(worker.run("p1", prompt, ["2"], {}, {"up/i.png": b"img"}))
        assert items[-1][0] == "done" and items[-1][1]["status"] == "success"
        executed = [i for i in items if i[0] == "event" and i[1] == "executed"]
        files = executed[0][3]
        assert list(files) == [("output", "", "z_00001_.png")]
        assert files[("output", "", "z_00001_.png")].startswith(b"\x89PNG")
        assert (worker.dirs["input"] / "up" / "i.png").read_bytes() == b"img"
        assert not (tmp_path / "output").exists()
        again = list(worker.run("p2", prompt, ["2"], {}, {}))
        assert [i[3] for i in again if i[0] == "event" and i[1] == "executed"] == [{}]
    finally:
        worker.close()


def test_remote_free_waits_for_the_running_job(tmp_path):
    """POST /free reaching a busy worker is applied when its job ends, never under it."""
    config = make_config(tmp_path)
    worker = RemoteWorker("w", nodes, config)
    try:
        prompt = {"1": {"class_type": "Const", "inputs": {"value": 1}},
                  "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}}
        stream = worker.run("p1", prompt, ["2"], {}, {})
        next(stream)  # the job is running
        worker.free(True, False)
        assert worker.env.freed == []
        list(stream)
        assert worker.env.freed == [True]
        worker.free(False, True)  # idle: at once
        assert worker.env.freed == [True, False]
    finally:
        worker.close()


def test_node_order_is_the_same_in_every_process():
    """A worker is another process with another hash seed: independent nodes must still run
    (and send their messages) in the order the in-process worker uses."""
    code = """
import threading
from engine.executor import Executor
from tests.stub_nodes import STUB_NODES, StubEnv
prompt = {str(i): {"class_type": "Const", "inputs": {"value": i}} for i in range(1, 9)}
prompt.update({str(10 + i): {"class_type": "Show", "inputs": {"x": [str(i), 0]}} for i in range(1, 9)})
run = Executor(STUB_NODES, StubEnv("/tmp")).execute(prompt, [str(10 + i) for i in range(1, 9)],
                                                     prompt_id="p", cancel=threading.Event())
print(",".join(run.executed))
"""
    orders = set()
    for seed in ("1", "2", "3", "4", "5"):
        out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=60, env={**__import__("os").environ,
                                                         "PYTHONHASHSEED": seed})
        assert out.returncode == 0, out.stderr
        orders.add(out.stdout.strip())
    assert len(orders) == 1, orders


def test_a_restarted_worker_removes_its_predecessors_scratch(tmp_path):
    """Ray restarts a killed actor under the same name: the new one deletes the scratch folder
    (inputs included) the dead one could not; close() removes its own."""
    config = make_config(tmp_path)
    first = RemoteWorker("w", nodes, config)
    list(first.run("p1", {"1": {"class_type": "Const", "inputs": {"value": 1}}}, ["1"], {},
                   {"up.png": b"secret"}))
    assert (first.scratch / "input" / "up.png").exists()
    second = RemoteWorker("w", nodes, config)  # `first` was killed: nobody called its close()
    other = RemoteWorker("w2", nodes, config)  # another worker's folder is not touched
    try:
        assert not first.scratch.exists() and second.scratch.is_dir()
        assert other.scratch.is_dir()
    finally:
        second.close()
        other.close()
    assert not second.scratch.exists() and not other.scratch.exists()


def test_a_job_reports_started_before_anything_else(tmp_path):
    """The first stream item says the job reached a live worker (the server requeues a job
    whose worker died before it); a cancel that came first still stops it."""
    worker = RemoteWorker("w", nodes, make_config(tmp_path))
    try:
        worker.cancel("p1")
        items = list(worker.run("p1", {"1": {"class_type": "Const", "inputs": {"value": 1}},
                                       "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}},
                                ["2"], {}, {}))
        assert items[0] == ("started", os.getpid())
        assert items[-1][0] == "done" and items[-1][1]["status"] == "interrupted"
    finally:
        worker.close()
