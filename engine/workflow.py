"""The one workflow document format and its API-prompt view (strip every ``ui`` key)."""
from __future__ import annotations

from typing import Any, Mapping


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
    for node_id, node in document["nodes"].items():
        if not isinstance(node, dict):
            prompt[str(node_id)] = node  # validation reports the bad node with ComfyUI's shape
            continue
        entry = {k: v for k, v in node.items() if k != "ui"}
        title = (node.get("ui") or {}).get("title") if isinstance(node.get("ui"), dict) else None
        if not isinstance(title, str) or not title:
            title = _class_title(node.get("class_type"), registry)
        if title and "_meta" not in entry:
            entry["_meta"] = {"title": title}
        prompt[str(node_id)] = entry
    return prompt


def _class_title(class_type: Any, registry: Mapping[str, Any] | None) -> str | None:
    if not isinstance(class_type, str):
        return None
    cls = registry.get(class_type) if registry is not None else None
    return getattr(cls, "TITLE", "") or class_type
