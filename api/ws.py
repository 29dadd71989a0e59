"""WebSocket hub: ComfyUI's ``/ws`` event stream and binary preview frames.

Previews go only to clients that opted in, because some API clients treat any binary frame
as a finished image: a ``feature_flags`` handshake with ``supports_preview_metadata`` gets
type-4 frames (JSON metadata + image); connecting with ``?previews=1`` gets ComfyUI's legacy
type-1 frames (8-byte header: event type 1, format 1 = JPEG, then the JPEG bytes).
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from api import strict_json
from api.common import services, truthy

log = logging.getLogger("cascade.ws")
PREVIEW_IMAGE, PREVIEW_IMAGE_WITH_METADATA = 1, 4
FORMAT_JPEG = 1


@dataclass
class Client:
    sid: str
    ws: web.WebSocketResponse
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    metadata_previews: bool = False
    legacy_previews: bool = False

    @property
    def wants_previews(self) -> bool:
        return self.metadata_previews or self.legacy_previews


class Hub:
    """Routes worker events to sockets, in order, on the server's event loop."""

    def __init__(self, preview_size: int = 512):
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the app starts
        self.preview_size = preview_size
        self.clients: dict[str, Client] = {}
        self.waiters: dict[str, list[asyncio.Future]] = {}

    # -- called from the worker thread ---------------------------------------------------------
    def publish_threadsafe(self, event: str, data: dict, client_id: str | None) -> None:
        """The worker's ``publish``: previews are encoded here, off the event loop."""
        if event == "preview":
            client = self.clients.get(client_id or "")
            if client is None or not client.wants_previews:
                return
            try:
                data = {"node_id": data["node_id"], "prompt_id": data["prompt_id"],
                        "jpeg": self._encode(data["image"])}
            except Exception:  # a preview is a nicety: never fail the node over it
                log.debug("could not encode preview", exc_info=True)
                return
        if self.loop is None or self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.dispatch, event, data, client_id)
        except RuntimeError:  # loop shut down while the worker finished a job
            pass

    def _encode(self, image: Any) -> bytes:
        image = image.convert("RGB")
        image.thumbnail((self.preview_size, self.preview_size))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=95)
        return buf.getvalue()

    # -- on the loop -------------------------------------------------------------------------
    def dispatch(self, event: str, data: dict, client_id: str | None) -> None:
        if event == "job_done":
            for fut in self.waiters.pop(data["prompt_id"], []):
                if not fut.done():
                    fut.set_result(data["entry"])
            return
        if event == "preview":
            client = self.clients.get(client_id or "")
            if client is not None:
                client.outbox.put_nowait(self._frame(client, data))
            return
        message = strict_json.dumps({"type": event, "data": data}, default=str)
        if client_id is None:
            if event in ("status", "execution_interrupted"):
                for client in self.clients.values():
                    client.outbox.put_nowait(message)
            return  # per-prompt events of a prompt without client_id go nowhere (ComfyUI)
        client = self.clients.get(client_id)
        if client is not None:
            client.outbox.put_nowait(message)

    def _frame(self, client: Client, data: dict) -> bytes:
        if client.metadata_previews:
            meta = json.dumps({"node_id": data["node_id"], "prompt_id": data["prompt_id"],
                               "display_node_id": data["node_id"], "parent_node_id": None,
                               "real_node_id": data["node_id"], "image_type": "image/jpeg"}).encode()
            return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + data["jpeg"]
        return struct.pack(">II", PREVIEW_IMAGE, FORMAT_JPEG) + data["jpeg"]

    def wait_for(self, prompt_id: str) -> asyncio.Future:
        fut = self.loop.create_future()
        self.waiters.setdefault(prompt_id, []).append(fut)
        return fut

    async def close_all(self) -> None:
        for client in list(self.clients.values()):
            await client.ws.close()


async def _sender(client: Client) -> None:
    """Drains the client's outbox in order; a vanished client just stops being written to."""
    try:
        while True:
            item = await client.outbox.get()
            if isinstance(item, bytes):
                await client.ws.send_bytes(item)
            else:
                await client.ws.send_str(item)
    except (ConnectionError, RuntimeError):
        pass


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    """``GET /ws?clientId=``: status on connect, then the prompt's events, in order."""
    svc = services(request)
    hub: Hub = svc.hub
    ws = web.WebSocketResponse(max_msg_size=1 << 20)
    await ws.prepare(request)
    sid = request.query.get("clientId") or uuid.uuid4().hex
    client = Client(sid, ws, legacy_previews=truthy(request.query.get("previews", "")))
    # Queued before the client is visible to the hub, so ``status`` with ``sid`` comes first.
    client.outbox.put_nowait(json.dumps({"type": "status",
                                         "data": {**svc.worker.status(), "sid": sid}}))
    running = svc.worker.running
    if running is not None and running.client_id == sid and running.node is not None:
        client.outbox.put_nowait(json.dumps({"type": "executing", "data": {
            "node": running.node, "display_node": running.node, "prompt_id": running.prompt_id}}))
    old = hub.clients.get(sid)
    hub.clients[sid] = client  # a reconnect with the same id replaces the old socket
    if old is not None:
        await old.ws.close()
    sender = asyncio.ensure_future(_sender(client))
    first = True
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            if first:
                _handshake(client, msg.data, svc.config.max_body_bytes)
            first = False
    finally:
        sender.cancel()
        if hub.clients.get(sid) is client:
            del hub.clients[sid]
    return ws


def _handshake(client: Client, text: str, max_upload: int) -> None:
    """The optional first message ``{"type": "feature_flags", "data": {...}}``."""
    try:
        message = strict_json.parse(text)  # depth-capped: a 1 MB "[[[..." must not recurse
    except ValueError:
        return
    if not isinstance(message, dict) or message.get("type") != "feature_flags":
        return
    flags = message.get("data") if isinstance(message.get("data"), dict) else {}
    client.metadata_previews = bool(flags.get("supports_preview_metadata"))
    client.outbox.put_nowait(json.dumps({"type": "feature_flags", "data": server_features(max_upload)}))


def server_features(max_upload: int) -> dict:
    return {"supports_preview_metadata": True, "max_upload_size": max_upload}
