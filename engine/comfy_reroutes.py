"""Reroutes of ComfyUI's editor format: reading the native ones, writing our document's points.

Native reroutes (shared spec comfy_api.md §3.2): schema 0.4 keeps ``extra.reroutes``
``[{id, parentId?, pos, linkIds}]`` and ``extra.linkExtensions`` ``[{id: link id, parentId}]``;
schema 1 keeps top-level ``reroutes`` and each link's ``parentId``. A link's parentId is the
reroute nearest its target; a reroute's parentId the next one towards the source. Our document
stores the same chain as ``ui.reroutes`` ``[{id, pos, parent?}]`` plus, per target node,
``ui.link_reroutes`` ``{input: id}`` (engine.comfy_workflow builds both).
"""
from __future__ import annotations

from typing import Any

from engine.comfy_graph import ConvertError, pair
def native_reroutes(graph: dict, where: str) -> tuple[dict[str, dict], dict[Any, Any]]:
    """A graph's native reroutes ``{id: {"pos", "parent"}}`` (file ids as strings) and the
    0.4 ``linkExtensions`` ``{link id: reroute id}``. v1 keeps ``reroutes`` at top level, 0.4
    under ``extra``; entries without an id or a usable ``pos`` are skipped (nothing to draw)."""
    extra = graph.get("extra") if isinstance(graph.get("extra"), dict) else {}
    raw = graph.get("reroutes", extra.get("reroutes"))
    raw = [] if raw is None else raw
    if not isinstance(raw, list):
        raise ConvertError(f"{where}: 'reroutes' must be a list")
    points = {}
    for r in raw:
        if not isinstance(r, dict) or isinstance(r.get("id"), bool) \
                or not isinstance(r.get("id"), (int, str)) or pair(r.get("pos")) is None:
            continue
        parent = r.get("parentId")
        points[str(r["id"])] = {"pos": pair(r["pos"]),
                                "parent": str(parent) if isinstance(parent, (int, str))
                                and not isinstance(parent, bool) else None}
    ext = extra.get("linkExtensions")
    ext = ext if isinstance(ext, list) else []
    parents = {e["id"]: e.get("parentId") for e in ext  # any JSON may sit there: keys must hash
               if isinstance(e, dict) and isinstance(e.get("id"), (int, str))}
    return points, parents


def document_reroutes(routes: list[tuple[dict, str, list[str]]],
                      points: dict[str, list[float]]) -> list[dict]:
    """``ui.reroutes`` ``[{id, pos, parent?}]`` of the points the kept links pass.

    `routes` is ``[(document entry, input, point ids from the target towards the source)]``;
    a route whose entry does not name its first point (its link was rewired) adds nothing.
    Each point's parent is the next one towards the source, as its first route gives it.
    """
    parents: dict[str, str | None] = {}
    for entry, name, chain in routes:
        if not chain or entry["ui"].get("link_reroutes", {}).get(name) != chain[0]:
            continue
        for k, point in enumerate(chain):
            parents.setdefault(point, chain[k + 1] if k + 1 < len(chain) else None)
    out = []
    for point, parent in parents.items():
        item = {"id": point, "pos": points[point]}
        if parent is not None:
            item["parent"] = parent
        out.append(item)
    return out
