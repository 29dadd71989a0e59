"""Per-socket outbox: bounded, previews coalesced, and the wire form of event data.

A client that stops reading must not make the server keep everything sent to it: the outbox
holds at most ``max_messages`` messages and ``max_bytes`` bytes; past that it is marked
overflowed and emptied, and the hub disconnects the client (it can reconnect and re-sync from
``/queue`` and ``/history``). A preview replaces the not-yet-sent preview of the same node, so
slow readers get the newest picture, not a backlog of old ones.
"""
from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any

TEXT_CAP = 4096  # characters per string field in a socket message (history keeps the whole)


class OutboxOverflow(Exception):
    pass


class Outbox:
    """FIFO of ``str`` (text) / ``bytes`` (binary) messages; see the module doc."""

    def __init__(self, max_messages: int = 500, max_bytes: int = 8 << 20):
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self._items: deque[tuple[Any, str | bytes]] = deque()
        self.bytes = 0
        self.overflowed = False
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, payload: str | bytes, key: Any = None) -> bool:
        """Queue `payload` (replacing the queued one with the same non-None `key`).
        False when the outbox is over its bounds: it is then emptied and stays closed."""
        if self.overflowed:
            return False
        if key is not None:
            for i, (k, old) in enumerate(self._items):
                if k == key:
                    del self._items[i]
                    self.bytes -= len(old)
                    break
        self._items.append((key, payload))
        self.bytes += len(payload)
        if len(self._items) > self.max_messages or self.bytes > self.max_bytes:
            self.overflowed = True
            self._items.clear()
            self.bytes = 0
        self._ready.set()
        return not self.overflowed

    async def get(self) -> str | bytes:
        """The oldest message; raises OutboxOverflow once the outbox has overflowed."""
        while not self._items:
            if self.overflowed:
                raise OutboxOverflow
            self._ready.clear()
            await self._ready.wait()
        _, payload = self._items.popleft()
        self.bytes -= len(payload)
        return payload


def wire(value: Any, cap: int = TEXT_CAP) -> Any:
    """`value` made safe to send: strings over `cap` characters cut with a note saying where
    the whole text is, NaN/Infinity (which browsers cannot parse) replaced by None."""
    if isinstance(value, str):
        if len(value) <= cap:
            return value
        return value[:cap] + f"… [{len(value) - cap} more characters; full text in /history]"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: wire(v, cap) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire(v, cap) for v in value]
    return value
