"""Per-prompt server overhead: HTTP POST + WebSocket wait vs a direct in-process executor call.

    python bench/server_overhead.py [--prompts 200]

Both paths run the same trivial graph (Const -> Add -> Show, stub nodes) with a fresh literal
each time so nothing is served from the cache; the difference is what the server adds
(JSON, validation in a thread, SQLite queue + history writes, the worker hand-off, WS events).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.executor import Executor  # noqa: E402
from engine.graph import validate_prompt  # noqa: E402
from tests.server_harness import collect_until_done, connect_ws, http_json, stub_server  # noqa: E402
from tests.stub_nodes import STUB_NODES, StubEnv  # noqa: E402


def trivial(value: int) -> dict:
    return {"1": {"class_type": "Const", "inputs": {"value": value % 1000}},
            "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["1", 0]}},
            "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}


def direct(n: int, tmp: Path) -> list[float]:
    env = StubEnv(tmp / "direct")
    executor = Executor(STUB_NODES, env)
    times = []
    for i in range(n):
        start = time.perf_counter()
        v = validate_prompt(trivial(i), STUB_NODES, env)
        executor.execute(v.prompt, v.outputs, prompt_id=str(i), cancel=threading.Event())
        times.append(time.perf_counter() - start)
    return times


def over_server(n: int, tmp: Path) -> list[float]:
    times = []
    with stub_server(tmp / "server") as (base, _, _):
        cid = uuid.uuid4().hex
        ws = connect_ws(base, cid)
        ws.recv()
        for i in range(n):
            start = time.perf_counter()
            status, body = http_json("POST", base + "/prompt",
                                     {"prompt": trivial(i), "client_id": cid})
            assert status == 200, body
            collect_until_done(ws, body["prompt_id"])
            times.append(time.perf_counter() - start)
        ws.close()
    return times


def summary(times: list[float]) -> dict:
    ms = sorted(t * 1000 for t in times)
    return {"median_ms": round(statistics.median(ms), 3), "mean_ms": round(statistics.mean(ms), 3),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = summary(direct(args.prompts, Path(tmp)))
        s = summary(over_server(args.prompts, Path(tmp)))
    result = {"prompts": args.prompts, "direct": d, "server": s,
              "overhead_median_ms": round(s["median_ms"] - d["median_ms"], 3)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
