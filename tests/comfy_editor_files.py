"""Builders for small hand-written ComfyUI editor-format (litegraph) workflows."""
from __future__ import annotations

from typing import Any


def node(id_: int, type_: str, widgets: Any = None, inputs=(), outputs=(), mode: int = 0,
         **extra: Any) -> dict:
    """One editor node; `inputs` items are (name, type) or (name, type, widget name)."""
    ins = []
    for spec in inputs:
        entry = {"name": spec[0], "type": spec[1], "link": None}
        if len(spec) > 2:
            entry["widget"] = {"name": spec[2]}
        ins.append(entry)
    out = {"id": id_, "type": type_, "pos": [10 * id_, 20 * id_], "size": {"0": 200, "1": 80},
           "flags": {}, "order": id_, "mode": mode, "inputs": ins,
           "outputs": [{"name": n, "type": t, "links": []} for n, t in outputs],
           "properties": {}}
    if widgets is not None:
        out["widgets_values"] = widgets
    out.update(extra)
    return out


def workflow(nodes: list[dict], links: list[list], **extra: Any) -> dict:
    """Schema 0.4 file; `links` as [id, origin, origin_slot, target, target_slot, type], also
    stored on the nodes' sockets as the editor does."""
    by_id = {n["id"]: n for n in nodes}
    for lid, o, os_, t, ts, _ in links:
        if t in by_id and ts < len(by_id[t]["inputs"]):
            by_id[t]["inputs"][ts]["link"] = lid
        if o in by_id and os_ < len(by_id[o]["outputs"]):
            by_id[o]["outputs"][os_]["links"].append(lid)
    return {"last_node_id": max((n["id"] for n in nodes), default=0), "last_link_id": len(links),
            "nodes": nodes, "links": links, "groups": [], "config": {}, "extra": {},
            "version": 0.4, **extra}


CKPT = (("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE"))
KS_IN = (("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
         ("latent_image", "LATENT"))
COND = (("CONDITIONING", "CONDITIONING"),)
