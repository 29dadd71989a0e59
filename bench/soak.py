"""Reliability soak: a real server process under fuzzing, a burst, slow sockets and kill -9.

    .venv/bin/python bench/soak.py [--fuzz 10000] [--burst 1000] [--clients 20] [--ws 50]
                                   [--kills 3] [--json bench/results/soak.json]

Runs ``server.py --demo`` as a subprocess on a free loopback port with every folder in a temp
directory, then:

1. **fuzz**: ``--fuzz`` malformed or hostile requests over every route (the suite's generator,
   ``tests/fuzz_cases.py``), counting 5xx replies and checking the server still answers;
2. **burst**: ``--burst`` prompts of the cheapest real workflow (the editor's default workflow on
   the demo weights at 128², one step per stage, a fresh seed each so nothing is cached) posted
   by ``--clients`` threads at once, while ``--ws`` WebSocket clients listen, one of which never
   reads a byte;
3. **kill**: ``--kills`` rounds of: queue a batch, SIGKILL the server while it runs one, restart
   it on the same folders, let the queue drain.

Every accepted prompt must end in history exactly once. "Run twice" is measured on disk: each
prompt saves under its own filename prefix, so a prompt that ran twice leaves two PNGs. Prints
the 5xx count, jobs lost, jobs run twice, throughput and the server's RSS before and after.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz_cases import run_fuzz, strict_json  # noqa: E402
from tests.server_harness import http, server_args, start_server_process  # noqa: E402
from tests.ws_client import WebSocket  # noqa: E402


class Server:
    """``server.py --demo`` as a child process on fixed folders; restartable after a kill."""

    def __init__(self, tmp: Path):
        self.tmp, self.proc, self.base = tmp, None, ""

    def start(self) -> None:
        self.proc = start_server_process([*server_args(self.tmp), "--demo"], self.tmp / "logs",
                                         stub=False, timeout=300)
        self.base = self.proc.base

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        self.proc.stop(signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(signal.SIGINT)


def request(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 60) -> tuple[int, bytes]:
    status, _, raw = http(method, url, body, headers, timeout)
    return status, raw


# -- the cheapest real workflow ------------------------------------------------------------------
def cheap_prompt(server: Server) -> dict:
    _, raw = request("GET", server.base + "/workflows/default.json")
    doc = strict_json(raw)
    prompt = {nid: {"class_type": n["class_type"], "inputs": dict(n["inputs"])}
              for nid, n in doc["nodes"].items()}
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "StageCSampler":
            inputs.update(width=128, height=128, steps=1)
            inputs.pop("previewer", None)
        elif node["class_type"] == "StageBSampler":
            inputs.update(steps=1)
    return prompt


def with_seed(prompt: dict, seed: int, prefix: str, steps: int | None = None) -> dict:
    """A copy with both samplers' seed (and optionally steps) set and its own filename prefix."""
    out = json.loads(json.dumps(prompt))
    for node in out.values():
        if node["class_type"] in ("StageCSampler", "StageBSampler"):
            node["inputs"]["seed"] = seed
            if steps is not None:
                node["inputs"]["steps"] = steps
        elif node["class_type"] == "SaveImage":
            node["inputs"]["filename_prefix"] = prefix
    return out


def submit(server: Server, prompt: dict, prompt_id: str, client_id: str | None = None) -> int:
    body = {"prompt": prompt, "prompt_id": prompt_id}
    if client_id:
        body["client_id"] = client_id
    return request("POST", server.base + "/prompt", json.dumps(body).encode(),
                   {"Content-Type": "application/json"})[0]


def wait_drained(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = strict_json(request("GET", server.base + "/queue")[1])
        if not queue["queue_pending"] and not queue["queue_running"]:
            return
        time.sleep(0.2)
    raise SystemExit("queue did not drain in time")


def audit(server: Server, accepted: list[str], output: Path) -> dict:
    """Jobs lost (accepted, not in history) and run twice (more than one PNG for its prefix)."""
    history = strict_json(request("GET", server.base + "/history")[1])
    lost = [pid for pid in accepted if pid not in history]
    files: dict[str, int] = {}
    for png in output.rglob("*.png"):
        prefix = png.name.rsplit("_", 2)[0]
        files[prefix] = files.get(prefix, 0) + 1
    twice = [pid for pid in accepted if files.get(f"soak-{pid}", 0) > 1]
    statuses: dict[str, int] = {}
    for pid in accepted:
        entry = history.get(pid)
        if entry:
            status = entry["status"]["status_str"]
            statuses[status] = statuses.get(status, 0) + 1
    return {"lost": len(lost), "twice": len(twice), "statuses": statuses}


# -- phases --------------------------------------------------------------------------------------
def phase_fuzz(server: Server, count: int) -> dict:
    """The suite's hostile-request generator (tests/fuzz_cases.py), a fresh seed so it explores."""
    start = time.perf_counter()
    report = run_fuzz(server.base, count, seed=int(time.time()))
    elapsed = time.perf_counter() - start
    alive = request("GET", server.base + "/queue")[0] == 200
    fivexx = sum(n for status, n in report.by_status.items() if status >= 500)
    return {"cases": report.sent, "5xx": fivexx, "problems": len(report.problems),
            "examples": [f"{case.method} {case.target[:80]!r}: {what}" for case, what in report.problems[:5]],
            "alive": alive, "seconds": round(elapsed, 1)}


class Listener(threading.Thread):
    """A WebSocket client that reads everything (or, with ``reads=False``, nothing at all)."""

    def __init__(self, server: Server, reads: bool):
        super().__init__(daemon=True)
        self.ws, self.reads, self.messages, self.closed = WebSocket(), reads, 0, False
        self.ws.connect(f"{server.base.replace('http', 'ws')}/ws?clientId={uuid.uuid4().hex}")

    def run(self) -> None:
        if not self.reads:
            return
        self.ws.settimeout(None)  # idle between events is fine; only a close ends the loop
        try:
            while True:
                self.ws.recv()
                self.messages += 1
        except Exception:
            self.closed = True


def phase_burst(server: Server, prompt: dict, count: int, clients: int, ws_clients: int) -> tuple[dict, list[str]]:
    listeners = [Listener(server, reads=i > 0) for i in range(ws_clients)]
    for listener in listeners:
        listener.start()
    ids = [f"b{i:05d}" for i in range(count)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(lambda i: submit(server, with_seed(prompt, 10_000 + i, f"soak-{ids[i]}"), ids[i]),
                              range(count)))
    wait_drained(server, timeout=max(600, count * 2))
    elapsed = time.perf_counter() - start
    accepted = [pid for pid, code in zip(ids, codes) if code == 200]
    readers, silent = listeners[1:], listeners[0]
    readers_alive = sum(not r.closed for r in readers)
    silent.ws.settimeout(10)
    try:  # the server must have dropped the client that never read: EOF after what was buffered
        while True:
            silent.ws.recv()
    except Exception:
        silent.closed = True
    result = {"posted": count, "accepted": len(accepted), "5xx": sum(c >= 500 for c in codes),
              "seconds": round(elapsed, 1), "prompts_per_s": round(len(accepted) / elapsed, 2),
              "ws_readers_alive": readers_alive,
              "silent_client_dropped": silent.closed,
              "ws_messages_min": min((r.messages for r in readers), default=0)}
    return result, accepted


def phase_kill(server: Server, prompt: dict, rounds: int, per_round: int = 12) -> tuple[dict, list[str]]:
    accepted, interrupted = [], 0
    for r in range(rounds):
        ids = [f"k{r}-{i:03d}" for i in range(per_round)]
        for i, pid in enumerate(ids):
            # 40 steps a stage: long enough that the kill lands mid-job with others queued.
            job = with_seed(prompt, 20_000 + r * 100 + i, f"soak-{pid}", steps=40)
            if submit(server, job, pid) == 200:
                accepted.append(pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill while a job is running and others wait
            queue = strict_json(request("GET", server.base + "/queue")[1])
            if queue["queue_running"] and queue["queue_pending"]:
                break
            time.sleep(0.005)
        server.kill()
        server.start()
        wait_drained(server, timeout=300)
        history = strict_json(request("GET", server.base + "/history")[1])
        interrupted += sum(1 for pid in ids if pid in history
                           and history[pid]["status"]["messages"]
                           and history[pid]["status"]["messages"][-1][0] == "execution_interrupted")
    return {"rounds": rounds, "accepted": len(accepted), "interrupted_by_kill": interrupted}, accepted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fuzz", type=int, default=10_000)
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--ws", type=int, default=50)
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cascade-soak-") as tmp_name:
        tmp = Path(tmp_name)
        server = Server(tmp)
        server.start()
        try:
            prompt = cheap_prompt(server)
            submit(server, with_seed(prompt, 0, "soak-warmup"), "warmup")  # load the models once
            wait_drained(server, 300)
            rss_before = server.rss_mib()
            fuzz = phase_fuzz(server, args.fuzz)
            burst, accepted = phase_burst(server, prompt, args.burst, args.clients, args.ws)
            rss_after = server.rss_mib()
            kills, killed_ids = phase_kill(server, prompt, args.kills)
            accepted += killed_ids
            counts = audit(server, accepted, tmp / "output")
            rss_final = server.rss_mib()
        finally:
            server.stop()
    report = {"fuzz": fuzz, "burst": burst, "kill": kills, "jobs": counts,
              "5xx_total": fuzz["5xx"] + burst["5xx"],
              "rss_mib": {"before": round(rss_before, 1), "after_fuzz_and_burst": round(rss_after, 1),
                          "after_restarts": round(rss_final, 1)}}
    print(f"5xx: {report['5xx_total']}  jobs lost: {counts['lost']}  jobs run twice: {counts['twice']}")
    print(f"fuzz: {fuzz['cases']} cases in {fuzz['seconds']} s, server alive: {fuzz['alive']}")
    print(f"burst: {burst['accepted']}/{burst['posted']} prompts from {args.clients} clients in "
          f"{burst['seconds']} s = {burst['prompts_per_s']} prompts/s; "
          f"{burst['ws_readers_alive']}/{args.ws - 1} reading WebSocket clients connected throughout, "
          f"the one that never read {'dropped' if burst['silent_client_dropped'] else 'NOT dropped'}")
    print(f"kill -9: {kills['rounds']} rounds, {kills['interrupted_by_kill']} running jobs recorded "
          f"interrupted, the rest ran after restart")
    print(f"server RSS: {report['rss_mib']['before']} MiB before, "
          f"{report['rss_mib']['after_fuzz_and_burst']} MiB after fuzz + burst")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    bad = report["5xx_total"] or counts["lost"] or counts["twice"] or not fuzz["alive"] \
        or fuzz["problems"] or not burst["silent_client_dropped"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
