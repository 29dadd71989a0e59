"""WebSocket hub: ComfyUI's ``/ws`` event stream and binary preview frames.

Previews go only to clients that opted in, because some API clients treat any binary frame
as a finished image: a ``feature_flags`` handshake with ``supports_preview_metadata`` gets
type-4 frames (JSON metadata + image); connecting with ``?previews=1`` gets ComfyUI's legacy
type-1 frames (8-byte header: event type 1, format 1 = JPEG, then the JPEG bytes).
An image a node sends as its output (SaveImageWebsocket: ComfyUI's ``("PNG", image, None)`` form)
goes to the prompt's client whether it opted in or not, full size, never coalesced: type-1 frames
with format 2 = PNG, as ComfyUI's websockets_api_example_ws_images client reads them.

Each client has a bounded outbox (api/ws_outbox.py) and is pinged every ``heartbeat`` s; a
client that falls too far behind is disconnected rather than buffered for ever.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import struct
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from api import strict_json
from api.common import call_on_loop, services, truthy
from api.redact import REDACTOR, is_remote_peer, scrub_tree
from api.ws_outbox import Outbox, OutboxOverflow, wire

log = logging.getLogger("cascade.ws")
PREVIEW_IMAGE, PREVIEW_IMAGE_WITH_METADATA = 1, 4
FORMATS = {"JPEG": 1, "PNG": 2}  # ComfyUI's format numbers in type-1 frames


@dataclass
class Client:
    sid: str
    ws: web.WebSocketResponse
    outbox: Outbox
    transport: Any = None  # the TCP transport, aborted when the client falls too far behind
    metadata_previews: bool = False
    legacy_previews: bool = False
    # For a peer that is not this machine: str -> str hiding absolute paths (api/redact.py);
    # error events carry exception text and tracebacks, which name files on the server.
    scrub: Callable[[str], str] | None = None

    @property
    def wants_previews(self) -> bool:
        return self.metadata_previews or self.legacy_previews


class Hub:
    """Routes worker events to sockets, in order, on the server's event loop."""

    def __init__(self, preview_size: int = 512, outbox_messages: int = 500,
                 outbox_bytes: int = 8 << 20, heartbeat: float | None = 30.0):
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the app starts
        self.preview_size = preview_size
        self.outbox_messages, self.outbox_bytes = outbox_messages, outbox_bytes
        self.heartbeat = heartbeat
        self.clients: dict[str, Client] = {}
        self.waiters: dict[str, list[asyncio.Future]] = {}
        self.dropped = 0  # clients disconnected for falling behind (observability, tests)

    def new_outbox(self) -> Outbox:
        return Outbox(self.outbox_messages, self.outbox_bytes)

    # -- called from the worker thread ---------------------------------------------------------
    def publish_threadsafe(self, event: str, data: dict, client_id: str | None) -> None:
        """The worker's ``publish``: previews are encoded here, off the event loop."""
        if event == "preview":
            client = self.clients.get(client_id or "")
            sent = isinstance(data["image"], tuple)  # a node's output image, not a sampler preview
            if client is None or not (sent or client.wants_previews):
                return
            try:
                fmt, payload = self._encode(data["image"])
                data = {"node_id": data["node_id"], "prompt_id": data["prompt_id"], "format": fmt,
                        "bytes": payload, "sent": sent}
            except Exception:  # a preview is a nicety: never fail the node over it
                log.debug("could not encode preview", exc_info=True)
                return
        call_on_loop(self.loop, self.dispatch, event, data, client_id)

    def _encode(self, image: Any) -> tuple[str, bytes]:
        """(format, bytes): a bare PIL image is a preview (JPEG, at most preview_size); a
        ``(format, image, max_size)`` tuple is encoded in that format, resized only if max_size."""
        fmt, max_size = "JPEG", self.preview_size
        if isinstance(image, tuple):
            fmt, image, max_size = image
            fmt = "PNG" if fmt == "PNG" else "JPEG"
        if fmt == "JPEG" and image.mode != "RGB":
            image = image.convert("RGB")
        if max_size:
            image = image.copy()
            image.thumbnail((max_size, max_size))
        buf = io.BytesIO()
        image.save(buf, format=fmt, quality=95, compress_level=1)
        return fmt, buf.getvalue()

    # -- on the loop -------------------------------------------------------------------------
    def dispatch(self, event: str, data: dict, client_id: str | None) -> None:
        if event == "preview":
            client = self.clients.get(client_id or "")
            if client is not None:  # previews coalesce per node; sent images must all arrive
                key = None if data["sent"] else ("preview", data["node_id"])
                self.send(client, self._frame(client, data), key=key)
            return
        if client_id is None:
            if event not in ("status", "execution_interrupted"):
                return  # per-prompt events of a prompt without client_id go nowhere (ComfyUI)
            targets = list(self.clients.values())
        else:
            client = self.clients.get(client_id)
            targets = [client] if client is not None else []
        plain: str | None = None
        scrubbed: str | None = None  # every remote client gets the same text: scrub once
        for client in targets:
            if client.scrub is None:
                if plain is None:
                    plain = strict_json.dumps({"type": event, "data": wire(data)}, default=str)
                self.send(client, plain)
            else:
                if scrubbed is None:
                    scrubbed = strict_json.dumps({"type": event, "data": wire(
                        scrub_tree(data, client.scrub))}, default=str)
                self.send(client, scrubbed)

    def send(self, client: Client, payload: str | bytes, key: Any = None) -> None:
        """Queue for `client`; one that has fallen too far behind is disconnected."""
        if client.outbox.put(payload, key):
            return
        if self.clients.get(client.sid) is client:
            del self.clients[client.sid]
            self.dropped += 1
            log.info("disconnecting WebSocket client %s: it fell behind by more than %d "
                     "messages or %d bytes", client.sid, client.outbox.max_messages,
                     client.outbox.max_bytes)
        if client.transport is not None:
            client.transport.abort()  # a close frame would queue behind what it never read

    def _frame(self, client: Client, data: dict) -> bytes:
        if client.metadata_previews:
            meta = json.dumps({"node_id": data["node_id"], "prompt_id": data["prompt_id"],
                               "display_node_id": data["node_id"], "parent_node_id": None,
                               "real_node_id": data["node_id"],
                               "image_type": f"image/{data['format'].lower()}"}).encode()
            return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + data["bytes"]
        return struct.pack(">II", PREVIEW_IMAGE, FORMATS[data["format"]]) + data["bytes"]

    # -- waiters of POST /prompt?wait=true ------------------------------------------------------
    def wait_for(self, prompt_id: str) -> asyncio.Future:
        """A future resolved with ``(state, entry)`` when the job ends (see job_ended)."""
        fut = self.loop.create_future()
        self.waiters.setdefault(prompt_id, []).append(fut)
        return fut

    def forget(self, prompt_id: str, fut: asyncio.Future) -> None:
        futures = self.waiters.get(prompt_id, [])
        if fut in futures:
            futures.remove(fut)
        if not futures:
            self.waiters.pop(prompt_id, None)

    def job_ended(self, prompt_id: str, state: str, entry: dict | None) -> None:
        """The store's ``on_end`` (any thread): "done" with its entry, or "cancelled"."""
        call_on_loop(self.loop, self._resolve, prompt_id, state, entry)

    def _resolve(self, prompt_id: str, state: str, entry: dict | None) -> None:
        for fut in self.waiters.pop(prompt_id, []):
            if not fut.done():
                fut.set_result((state, entry))

    def release_waiters(self, lookup: Callable[[str], dict | None]) -> None:
        """At shutdown: answer every waiter with its job's current state (``lookup`` = store.job)."""
        for prompt_id in list(self.waiters):
            job = lookup(prompt_id)
            state = job["state"] if job else "cancelled"
            self._resolve(prompt_id, state, job.get("entry") if job else None)

    async def close_all(self, timeout: float = 1.0) -> None:
        """Close every socket at once, aborting those that do not answer within `timeout` s."""
        async def close(client: Client) -> None:
            try:
                await asyncio.wait_for(client.ws.close(code=WSCloseCode.GOING_AWAY,
                                                       message=b"server shutting down"), timeout)
            except Exception:  # timed out or already broken: drop the connection
                if client.transport is not None:
                    client.transport.abort()
        clients = list(self.clients.values())
        self.clients.clear()
        await asyncio.gather(*(close(c) for c in clients))


async def _sender(client: Client) -> None:
    """Drains the client's outbox in order; a vanished client just stops being written to."""
    try:
        while True:
            item = await client.outbox.get()
            if isinstance(item, bytes):
                await client.ws.send_bytes(item)
            else:
                await client.ws.send_str(item)
    except (ConnectionError, RuntimeError, OutboxOverflow):
        pass


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    """``GET /ws?clientId=``: status on connect, then the prompt's events, in order."""
    svc = services(request)
    hub: Hub = svc.hub
    # heartbeat: aiohttp pings and closes a socket whose pong does not come back in time;
    # timeout bounds how long a close waits for the client's answer.
    ws = web.WebSocketResponse(max_msg_size=1 << 20, heartbeat=hub.heartbeat, timeout=1.0)
    await ws.prepare(request)
    sid = request.query.get("clientId") or uuid.uuid4().hex
    client = Client(sid, ws, hub.new_outbox(), request.transport,
                    legacy_previews=truthy(request.query.get("previews", "")),
                    scrub=request.app[REDACTOR] if is_remote_peer(request) else None)
    # Queued before the client is visible to the hub, so ``status`` with ``sid`` comes first.
    client.outbox.put(json.dumps({"type": "status",
                                  "data": {**svc.worker.status(), "sid": sid}}))
    for running in svc.worker.running_jobs():  # one per worker with --workers
        if running.client_id == sid and running.node is not None:
            client.outbox.put(json.dumps({"type": "executing", "data": {
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
                _handshake(hub, client, msg.data, svc.config.max_body_bytes)
            first = False
    finally:
        sender.cancel()
        if hub.clients.get(sid) is client:
            del hub.clients[sid]
    return ws


def _handshake(hub: Hub, client: Client, text: str, max_upload: int) -> None:
    """The optional first message ``{"type": "feature_flags", "data": {...}}``."""
    try:
        message = strict_json.parse(text)  # depth-capped: a 1 MB "[[[..." must not recurse
    except ValueError:
        return
    if not isinstance(message, dict) or message.get("type") != "feature_flags":
        return
    flags = message.get("data") if isinstance(message.get("data"), dict) else {}
    client.metadata_previews = bool(flags.get("supports_preview_metadata"))
    hub.send(client, json.dumps({"type": "feature_flags", "data": server_features(max_upload)}))


def server_features(max_upload: int) -> dict:
    return {"supports_preview_metadata": True, "max_upload_size": max_upload}
