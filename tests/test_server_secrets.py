"""The token stays secret (replies, headers, logs) and remote clients never see absolute paths."""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from config import PROJECT_ROOT
from server import create_app
from tests.server_harness import http, make_config, stub_server
from tests.stub_nodes import STUB_NODES, StubEnv

GET_ROUTES = ("/", "/index.html", "/queue", "/history", "/prompt", "/object_info",
              "/object_info/Const", "/models", "/models/stage_c", "/models/nope", "/embeddings",
              "/system_stats", "/features", "/jobs", "/jobs/unknown", "/history/unknown",
              "/view?filename=missing.png", "/view", "/nope.js", "/api/system_stats")


def test_token_never_in_replies_headers_or_logs(tmp_path, monkeypatch, caplog):
    token = "tok-" + uuid.uuid4().hex
    monkeypatch.setattr(sys, "argv", ["server.py", "--port", "0", "--token", token, f"--tok={token}"])
    caplog.set_level(logging.DEBUG)
    with stub_server(tmp_path, token=token) as (base, _, _):
        seen = []
        for path in GET_ROUTES:
            sep = "&" if "?" in path else "?"
            seen.append(http("GET", f"{base}{path}{sep}token={token}"))
            seen.append(http("GET", base + path, None, {"Authorization": f"Bearer {token}"}))
            seen.append(http("GET", base + path))  # 401
        seen.append(http("POST", f"{base}/prompt?token={token}", b"{bad",
                         {"Content-Type": "application/json"}))
        for status, headers, raw in seen:
            assert status < 500
            assert token.encode() not in raw, (status, raw[:200])
            assert token not in json.dumps(headers)
        stats = json.loads(http("GET", base + "/system_stats", None,
                                {"Authorization": f"Bearer {token}"})[2])
        assert stats["system"]["argv"] == ["server.py", "--port", "0", "--token", "***", "--tok=***"]
    assert token not in caplog.text


def _fake_remote(peer: str):
    """Outermost middleware for the test: the request appears to come from `peer`."""
    @web.middleware
    async def middleware(request, handler):
        return await handler(request.clone(remote=peer))
    return middleware


async def _sweep(app: web.Application, failing_prompt: dict, paths: tuple[str, ...]) -> list[str]:
    bodies = []
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.post("/prompt", json={"prompt": failing_prompt})
        reply = await resp.json()
        assert resp.status == 200, reply
        prompt_id = reply["prompt_id"]
        for _ in range(200):
            history = await (await client.get(f"/history/{prompt_id}")).json()
            if history:
                break
            await asyncio.sleep(0.05)
        for path in paths + (f"/history/{prompt_id}", "/history"):
            resp = await client.get(path)
            assert resp.status < 500
            bodies.append(await resp.text())
    return bodies


def failing_prompt(message: str) -> dict:
    """Const -> Fail(message) -> Show: a job whose error text is `message`."""
    return {"1": {"class_type": "Const", "inputs": {"value": 1}},
            "2": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": message}},
            "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}


@pytest.mark.parametrize("peer,remote", [("203.0.113.9", True), ("::ffff:198.51.100.2", True),
                                         ("127.0.0.1", False)])
def test_remote_clients_see_no_absolute_paths(tmp_path, monkeypatch, peer, remote):
    config = make_config(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(PROJECT_ROOT / "server.py"), "--weights",
                                      str(config.weights_dir), "--output", str(config.output_dir)])
    (config.weights_dir / "stage_c").mkdir(parents=True)
    (config.weights_dir / "stage_c" / "c.safetensors").write_bytes(b"x")
    missing = config.weights_dir / "stage_c" / "missing.safetensors"
    failing = failing_prompt(f"cannot open {missing}")
    app = create_app(config, STUB_NODES, StubEnv(config.output_dir))
    app.middlewares.insert(0, _fake_remote(peer))
    bodies = asyncio.run(_sweep(app, failing, ("/system_stats", "/models", "/models/stage_c",
                                               "/object_info", "/view?filename=nope.png")))
    text = "\n".join(bodies)
    assert "c.safetensors" in text and "missing.safetensors" in text  # names stay, roots go
    secrets = [str(config.weights_dir), str(tmp_path), str(PROJECT_ROOT), sys.prefix]
    if remote:
        for secret in secrets:
            assert secret not in text, secret
        assert "<weights>/stage_c/missing.safetensors" in text
    else:  # the editor on this machine keeps the real paths (they help the user)
        assert str(missing) in text and str(PROJECT_ROOT) in text and str(tmp_path) in text


async def _socket_events(app: web.Application, failing_prompt: dict) -> str:
    """Every WebSocket message the prompt's client gets until its error event, as text."""
    texts = []
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        ws = await client.ws_connect("/ws?clientId=remote-editor")
        resp = await client.post("/prompt", json={"prompt": failing_prompt,
                                                   "client_id": "remote-editor"})
        assert resp.status == 200, await resp.text()
        while not any('"execution_error"' in t for t in texts):
            msg = await asyncio.wait_for(ws.receive(), 20)
            assert msg.type == web.WSMsgType.TEXT, msg
            texts.append(msg.data)
        await ws.close()
    return "\n".join(texts)


@pytest.mark.parametrize("peer,remote", [("203.0.113.9", True), ("127.0.0.1", False)])
def test_remote_sockets_see_no_absolute_paths(tmp_path, peer, remote):
    config = make_config(tmp_path)
    missing = config.weights_dir / "stage_c" / "missing.safetensors"
    failing = failing_prompt(f"cannot open {missing}")
    app = create_app(config, STUB_NODES, StubEnv(config.output_dir))
    app.middlewares.insert(0, _fake_remote(peer))
    text = asyncio.run(_socket_events(app, failing))
    assert "missing.safetensors" in text  # the error itself arrives
    if remote:
        assert str(config.weights_dir) not in text and str(tmp_path) not in text
        assert str(PROJECT_ROOT) not in text  # the traceback's frames
        assert "<weights>/stage_c/missing.safetensors" in text
    else:
        assert str(missing) in text
