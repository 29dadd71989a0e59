"""Cross-prompt output cache keyed by node signatures (class + literals + fingerprint + upstream)."""
from __future__ import annotations

import hashlib
import json
import math
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

from engine.graph import Prompt, is_link
from engine.schema import Node


@dataclass
class CachedOutput:
    outputs: tuple
    ui: dict | None


def _canonical(value: Any) -> str:
    """Stable JSON for hashing; values JSON cannot express (or NaN) make the key unique."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return "unhashable:" + uuid.uuid4().hex  # never equal to anything: always re-run


def signatures(prompt: Prompt, registry: Mapping[str, type[Node]], env: Any,
               roots: list[str] | None = None) -> dict[str, str]:
    """Signature of every node: equal signatures mean equal outputs, independent of node ids.

    A node's signature hashes its class, its literal inputs, its ``fingerprint`` and the
    signatures (plus output index) of its linked sources, so editing one widget changes the
    signature of that node and of everything downstream only.
    """
    memo: dict[str, str] = {}

    def sig(node_id: str, trail: frozenset[str]) -> str:
        if node_id in memo:
            return memo[node_id]
        if node_id in trail or node_id not in prompt:  # cycles/dangling links never cache
            return "unhashable:" + uuid.uuid4().hex
        node = prompt[node_id]
        cls = registry[node["class_type"]]
        literals = {k: v for k, v in node["inputs"].items() if not is_link(v)}
        try:
            fp = cls.fingerprint(env, dict(literals))
        except Exception:
            fp = float("nan")
        if isinstance(fp, float) and math.isnan(fp):
            fp = {"always": uuid.uuid4().hex}
        parts = [node["class_type"], _canonical(fp)]
        for name in sorted(node["inputs"]):
            value = node["inputs"][name]
            if is_link(value) and len(value) == 2:
                parts.append(f"{name}=link:{sig(str(value[0]), trail | {node_id})}#{value[1]}")
            else:
                parts.append(f"{name}={_canonical(value)}")
        memo[node_id] = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
        return memo[node_id]

    for nid in (prompt if roots is None else roots):  # roots: only the outputs' ancestors
        sig(nid, frozenset())
    return memo


class OutputCache:
    """Node results by signature. Policy (ComfyUI "classic"): keep what the next prompt can reuse.

    ``retain`` is called at the start of each prompt with that prompt's signatures and drops
    everything else, so memory holds at most one prompt's intermediate results.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, CachedOutput] = {}

    def get(self, signature: str) -> CachedOutput | None:
        with self._lock:
            return self._entries.get(signature)

    def put(self, signature: str, value: CachedOutput) -> None:
        with self._lock:
            self._entries[signature] = value

    def retain(self, keep: set[str]) -> None:
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if k in keep}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
