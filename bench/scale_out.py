"""Scale-out figures for docs/scale-out.md: the SQLite queue's ceiling, and throughput and per-job
overhead of the in-process worker vs 1 and 2 Ray workers on stub nodes of fixed duration.

    python bench/scale_out.py [--jobs 24] [--duration 0.2] [--out bench/results/scale_out.json]

Per-job overhead = wall time x workers / jobs - duration: what each job costs a worker beyond its
node's fixed sleep (HTTP submit, SQLite, lease, Ray call, event stream, history). Jobs are all
queued first, so the figure is steady-state throughput, not one job's latency. The machine's
load average is recorded with the figures: on a shared machine they are upper bounds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.store import Store, history_entry  # noqa: E402
from tests.scale_out_nodes import NODES, nodes  # noqa: E402
from tests.server_harness import http_json, make_config, running_server, wait_for  # noqa: E402
from tests.stub_nodes import StubEnv  # noqa: E402


def queue_ceiling(tmp: Path, n: int = 2000) -> dict:
    """Jobs/s through the store alone: add + take_next + finish, as the dispatcher does them."""
    store = Store(tmp / "q.sqlite3")
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 1}}}
    start = time.perf_counter()
    for i in range(n):
        store.add(f"p{i}", store.next_number(), prompt, {"client_id": "c"}, ["1"])
    added = time.perf_counter()
    for _ in range(n):
        item = store.take_next("w")
        store.finish(item[1], history_entry(item, {}, "success", []))
    done = time.perf_counter()
    store.close()
    return {"jobs": n, "add_per_s": round(n / (added - start)),
            "take_finish_per_s": round(n / (done - added)),
            "end_to_end_per_s": round(n / (done - start))}


def job(i: int, duration: float) -> dict:
    steps = 4
    return {"1": {"class_type": "Const", "inputs": {"value": i % 1000}},
            "2": {"class_type": "Slow", "inputs": {"x": ["1", 0], "steps": steps,
                                                   "delay": duration / steps, "preview": False}},
            "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}


def throughput(base: str, jobs: int, duration: float, workers: int) -> dict:
    ids = []
    start = time.perf_counter()
    for i in range(jobs):
        status, body = http_json("POST", base + "/prompt", {"prompt": job(i, duration)})
        assert status == 200, body
        ids.append(body["prompt_id"])
    wait_for(lambda: all(http_json("GET", f"{base}/history/{p}")[1] for p in ids),
             timeout=600, interval=0.05)
    wall = time.perf_counter() - start
    return {"workers": workers, "jobs": jobs, "duration_s": duration, "wall_s": round(wall, 3),
            "jobs_per_s": round(jobs / wall, 2),
            "overhead_ms_per_job": round((wall * workers / jobs - duration) * 1000, 1)}


def run(jobs: int, duration: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_before": os.getloadavg()},
               "queue": queue_ceiling(tmp), "runs": []}
    config = make_config(tmp / "local")
    with running_server(config, NODES, StubEnv(config.output_dir)) as base:
        results["runs"].append({"mode": "in-process", **throughput(base, jobs, duration, 1)})
    from engine.dispatch import start_ray

    start = time.perf_counter()
    start_ray(None, 2)
    results["ray_start_s"] = round(time.perf_counter() - start, 1)
    for count in (1, 2):
        config = make_config(tmp / f"ray{count}", workers=count)
        with running_server(config, NODES, StubEnv(config.output_dir), nodes=nodes) as base:
            wait_for(lambda: all(w["state"] == "idle" for w in
                                 http_json("GET", base + "/system_stats")[1]["workers"]),
                     timeout=120)
            results["runs"].append({"mode": f"ray x{count}",
                                    **throughput(base, jobs, duration, count)})
    results["machine"]["loadavg_after"] = os.getloadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--duration", type=float, default=0.2, help="each job's node, seconds")
    parser.add_argument("--out", default="bench/results/scale_out.json")
    args = parser.parse_args()
    results = run(args.jobs, args.duration)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
