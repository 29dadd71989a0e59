"""The one workflow document format and its API-prompt view (strip every ``ui`` key).

A node's ``ui.mode`` is ``"bypass"`` or ``"mute"`` (absent: it runs), ComfyUI's modes 4 and 2:
a muted node is left out of the prompt and links from it are dropped; a bypassed node is left out
and each link from its output k goes to what its inputs give, by ComfyUI's rule
(engine.comfy_graph.bypass_pick, the one the ComfyUI converter uses). A dropped link is named in
the dependant's ``_meta.left_out`` ``{input: reason}`` so validation can say why it is missing.
"""
from __future__ import annotations

from typing import Any, Mapping

from engine.comfy_graph import bypass_pick

MODES = ("bypass", "mute")
MAX_HOPS = 10_000  # a chain of bypassed nodes this long is a loop


def is_document(value: Any) -> bool:
    """True when `value` is our workflow document rather than a bare ComfyUI API prompt."""
    if not isinstance(value, dict) or not isinstance(value.get("nodes"), dict):
        return False
    # An API prompt keyed "nodes" would be a node dict carrying class_type itself.
    return "class_type" not in value["nodes"]


def document_to_prompt(document: dict, registry: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """The API prompt of a document: each node's ``class_type`` and ``inputs``, ``ui`` dropped.

    Every node carries ``_meta.title`` (clients find nodes by it, as in ComfyUI's export): the
    node's ``ui.title``, else its class's ``TITLE`` from `registry`, else the class name.
    """
    prompt: dict[str, dict] = {}
    nodes = document["nodes"]
    any_mode = any(node_mode(n) for n in nodes.values())  # the common case walks nothing
    for node_id, node in nodes.items():
        if not isinstance(node, dict):
            prompt[str(node_id)] = node  # validation reports the bad node with ComfyUI's shape
            continue
        if node_mode(node) is not None:
            continue
        entry = {k: v for k, v in node.items() if k != "ui"}
        left_out: dict[str, str] = {}
        if any_mode and isinstance(entry.get("inputs"), dict):
            entry["inputs"] = dict(entry["inputs"])
            for name, value in list(entry["inputs"].items()):
                link, reason = _through_modes(value, nodes, registry)
                if reason is None:
                    entry["inputs"][name] = link
                else:
                    del entry["inputs"][name]
                    left_out[name] = reason
        title = (node.get("ui") or {}).get("title") if isinstance(node.get("ui"), dict) else None
        if not isinstance(title, str) or not title:
            title = _class_title(node.get("class_type"), registry)
        if title and "_meta" not in entry:
            entry["_meta"] = {"title": title}
        if left_out:
            meta = entry.get("_meta")
            entry["_meta"] = {**(meta if isinstance(meta, dict) else {}), "left_out": left_out}
        prompt[str(node_id)] = entry
    return prompt


def node_mode(node: Any) -> str | None:
    """``"bypass"``, ``"mute"`` or None (the node runs) from a document node's ``ui.mode``."""
    ui = node.get("ui") if isinstance(node, dict) else None
    mode = ui.get("mode") if isinstance(ui, dict) else None
    return mode if mode in MODES else None


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)
            and not isinstance(value[1], bool) and isinstance(value[0], (str, int)))


def _through_modes(value: Any, nodes: dict, registry: Mapping[str, Any] | None
                   ) -> tuple[Any, str | None]:
    """``(value, None)`` with a link walked past bypassed nodes, or ``(None, reason)`` when the
    link must be dropped (from a muted node, or a bypassed one with nothing to pass on)."""
    for _ in range(MAX_HOPS):
        if not _is_link(value):
            return value, None
        source_id = str(value[0])
        mode = node_mode(nodes.get(source_id))
        if mode is None:
            return value, None
        if mode == "mute":
            return None, f"node {source_id} is muted"
        value, reason = _bypassed(source_id, nodes[source_id], value[1], registry)
        if reason is not None:
            return None, reason
    return None, "the link loops through bypassed nodes"


def _bypassed(source_id: str, node: dict, slot: int, registry: Mapping[str, Any] | None
              ) -> tuple[Any, str | None]:
    """What bypassed `node`'s output `slot` passes on, typed by its class in `registry`."""
    cls = registry.get(node.get("class_type")) if registry is not None \
        and isinstance(node.get("class_type"), str) else None
    if cls is None:
        return None, f"node {source_id} is bypassed and its class is unknown"
    outputs = cls.OUTPUTS
    if not 0 <= slot < len(outputs):
        return None, f"node {source_id} is bypassed and has no output {slot}"
    given = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
    inputs = [(i.type, given[i.name] if _is_link(given.get(i.name)) else None) for i in cls.INPUTS]
    picked = bypass_pick(slot, outputs[slot].type, inputs)
    if picked is None:
        return None, (f"node {source_id} is bypassed and has no linked {outputs[slot].type} "
                      "input to pass on")
    return picked, None


def _class_title(class_type: Any, registry: Mapping[str, Any] | None) -> str | None:
    if not isinstance(class_type, str):
        return None
    cls = registry.get(class_type) if registry is not None else None
    return getattr(cls, "TITLE", "") or class_type
