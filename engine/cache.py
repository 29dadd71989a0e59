"""Cross-prompt output cache keyed by node signatures (class + literals + fingerprint + upstream)."""
from __future__ import annotations

import hashlib
import json
import math
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

from engine.graph import Prompt, is_link, links_of
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
    for root in (prompt if roots is None else roots):  # roots: only the outputs' ancestors
        if root in prompt and root not in memo:
            _sign_from(root, prompt, registry, env, memo)
    return memo


def _sign_from(root: str, prompt: Prompt, registry: Mapping[str, type[Node]], env: Any,
               memo: dict[str, str]) -> None:
    """Sign `root` and its ancestors, sources first, with an explicit stack (no recursion).

    A node is signed when it reaches the top of the stack a second time, by then every source
    is signed -- or is still on the path (a cycle), which, like a dangling link, never caches.
    """
    stack, path = [root], set()
    while stack:
        nid = stack[-1]
        if nid in memo:
            stack.pop()
            continue
        if nid not in path:
            path.add(nid)
            stack.extend(src for _, src, _ in links_of(prompt[nid])
                         if src in prompt and src not in memo and src not in path)
            continue
        memo[nid] = _digest(prompt[nid], registry, env, memo)
        path.discard(nid)
        stack.pop()


def _digest(node: dict, registry: Mapping[str, type[Node]], env: Any,
            memo: dict[str, str]) -> str:
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
            upstream = memo.get(str(value[0])) or "unhashable:" + uuid.uuid4().hex
            parts.append(f"{name}=link:{upstream}#{value[1]}")
        else:
            parts.append(f"{name}={_canonical(value)}")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


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
