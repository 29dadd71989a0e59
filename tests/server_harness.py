"""Run the real app on 127.0.0.1:<ephemeral> in a background thread, plus sync client helpers.

    with running_server(make_config(tmp), STUB_NODES, env) as base:
        status, body = http_json("POST", base + "/prompt", {"prompt": ...})
        ws = connect_ws(base, client_id)
        events = collect_until_done(ws, prompt_id)

    with server_process(server_args(tmp), tmp / "logs") as srv:  # a real server.py process
        http_json("GET", srv.base + "/queue"); srv.proc.send_signal(signal.SIGKILL)
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Mapping

from aiohttp import web

from config import PROJECT_ROOT, Config
from tests.ws_client import WebSocket

URL_LINE = re.compile(rb"Cascade Studio: (http://\S+?)/")


def make_config(tmp: Path, **overrides: Any) -> Config:
    """A config whose folders all live under `tmp`."""
    fields = dict(port=0, weights_dir=tmp / "weights", output_dir=tmp / "output",
                  input_dir=tmp / "input", temp_dir=tmp / "temp", data_dir=tmp / "user",
                  web_dir=tmp / "web")
    fields.update(overrides)
    return Config(**fields)


@contextlib.contextmanager
def running_server(config: Config, registry: Mapping, env: Any,
                   expose: dict | None = None, nodes: Any = None) -> Iterator[str]:
    """Start ``server.create_app`` on an ephemeral port; yields ``http://127.0.0.1:PORT``.
    ``expose["app"]`` receives the application (for tests that inspect server state);
    `nodes` builds each Ray worker's nodes when ``config.workers`` is set."""
    from server import create_app

    app = create_app(config, registry, env, nodes=nodes)
    if expose is not None:
        expose["app"] = app
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, handle_signals=False)
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            state["port"] = site._server.sockets[0].getsockname()[1]
            from server import DATA_LOCK
            app[DATA_LOCK].update(state["port"])
        except BaseException as exc:  # surface start-up failures in the test thread
            state["error"] = exc
        ready.set()
        if "error" not in state:
            loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="test-server", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in state:
        raise state["error"]
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    """(status, headers, raw body); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def http_json(method: str, url: str, payload: Any = None,
              headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any]:
    """(status, parsed JSON body or None)."""
    body = None if payload is None else json.dumps(payload).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    status, _, raw = http(method, url, body, hdrs, timeout)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def connect_ws(base: str, client_id: str, query: str = "",
               headers: dict[str, str] | None = None) -> WebSocket:
    ws = WebSocket()
    url = base.replace("http://", "ws://") + f"/ws?clientId={client_id}{query}"
    ws.connect(url, headers=headers)
    return ws


def collect_until_done(ws: WebSocket, prompt_id: str, timeout: float = 30) -> list:
    """Messages (dicts for JSON, bytes for binary) until ``executing`` with ``node: null``."""
    events: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        msg = ws.recv()
        if isinstance(msg, bytes):
            events.append(msg)
            continue
        data = json.loads(msg)
        events.append(data)
        if data["type"] == "executing" and data["data"].get("node") is None \
                and data["data"].get("prompt_id") == prompt_id:
            return events
    raise TimeoutError(f"no end marker for {prompt_id}; got {events}")


def submit(base: str, doc: dict, *, previews: bool = False, timeout: float = 120) -> tuple[str, list]:
    """POST the document with a fresh client id; return (prompt_id, all WebSocket events of the run)."""
    cid = uuid.uuid4().hex
    ws = connect_ws(base, cid, "&previews=1" if previews else "")
    try:
        status, body = http_json("POST", base + "/prompt", {"prompt": doc, "client_id": cid})
        assert status == 200, body
        return body["prompt_id"], collect_until_done(ws, body["prompt_id"], timeout=timeout)
    finally:
        ws.close()


def finished_entry(base: str, prompt_id: str, timeout: float = 120) -> dict:
    """The history entry of `prompt_id` once its job has ended (success, error or interrupted)."""
    def done():
        status, hist = http_json("GET", f"{base}/history/{prompt_id}")
        entry = hist.get(prompt_id) if status == 200 else None
        return entry if entry and entry["status"]["completed"] is not None else None

    return wait_for(done, timeout=timeout, interval=0.1)


def run_prompt(base: str, prompt: dict, timeout: float = 120) -> dict:
    """POST `prompt` (expecting 200) and return its history entry once the job has ended."""
    status, body = http_json("POST", base + "/prompt", {"prompt": prompt})
    assert status == 200, body
    return finished_entry(base, body["prompt_id"], timeout)


def wait_for(predicate, timeout: float = 10, interval: float = 0.02) -> Any:
    """Poll `predicate` until truthy; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met")


@contextlib.contextmanager
def stub_server(tmp: Path, expose: dict | None = None,
                **overrides: Any) -> Iterator[tuple[str, Any, Config]]:
    """The real server over the stub nodes: yields (base URL, StubEnv, Config)."""
    from tests.stub_nodes import STUB_NODES, StubEnv

    config = make_config(tmp, **overrides)
    env = StubEnv(config.output_dir)
    with running_server(config, STUB_NODES, env, expose) as base:
        yield base, env, config


# -- the server as a real process (SIGKILL, SIGINT, two servers, soak) -------------------------
def server_args(tmp: Path, port: int = 0) -> list[str]:
    """server.py arguments putting every folder under `tmp`; port 0 = any free port."""
    args = ["--host", "127.0.0.1", "--port", str(port)]
    for flag, name in (("--data", "user"), ("--output", "output"), ("--input", "input"),
                       ("--temp", "temp"), ("--weights", "weights")):
        args += [flag, str(tmp / name)]
    return args


@dataclass
class ServerProcess:
    """A started server process; ``stdout``/``stderr`` are files (read them with ``.err()``)."""

    proc: subprocess.Popen
    base: str
    stdout: Path
    stderr: Path

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10) -> int:
        """Send `sig` and wait; SIGKILL if it has not exited within `timeout` s."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def spawn_server(args: list[str], log_dir: Path, stub: bool = True) -> subprocess.Popen:
    """``python [-m tests.stub_server_main | server.py] ARGS`` from the project root, output
    into `log_dir`/server-N.{out,err} (files, so a chatty server never blocks on a pipe)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    n = len(list(log_dir.glob("server-*.out")))
    out, err = log_dir / f"server-{n}.out", log_dir / f"server-{n}.err"
    target = ["-m", "tests.stub_server_main"] if stub else [str(PROJECT_ROOT / "server.py")]
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen([sys.executable, *target, *args], cwd=PROJECT_ROOT, stdout=fo,
                                stderr=fe, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    proc.log_files = (out, err)  # type: ignore[attr-defined]
    return proc


def start_server_process(args: list[str], log_dir: Path, stub: bool = True,
                         timeout: float = 30) -> ServerProcess:
    """Spawn and wait until it prints its URL (the port is bound by then)."""
    proc = spawn_server(args, log_dir, stub)
    out, err = proc.log_files  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = URL_LINE.search(out.read_bytes())
        if found:
            return ServerProcess(proc, found.group(1).decode(), out, err)
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {err.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise TimeoutError(f"server did not print its URL within {timeout} s: {err.read_text()}")


@contextlib.contextmanager
def server_process(args: list[str], log_dir: Path, stub: bool = True) -> Iterator[ServerProcess]:
    """`start_server_process`, stopped (SIGINT, then SIGKILL) when the block ends."""
    srv = start_server_process(args, log_dir, stub)
    try:
        yield srv
    finally:
        srv.stop()
