"""A generated big workflow for the editor's speed bench and its smoke test: copies of the stub
pipeline (8 nodes, 9 links each) laid out in a grid, topped up with Stage A loaders to `count` nodes."""
from __future__ import annotations

from tests.web_stub_nodes import FILES

# One pipeline copy: (class, inputs with links as (local index, output), x, y) in its own cell.
_COPY = (
    ("LoadTextEncoder", {"file": FILES[0]}, 0, 0),
    ("LoadStageC", {"file": FILES[0]}, 0, 140),
    ("LoadStageA", {"file": FILES[0]}, 0, 280),
    ("TextEncode", {"text_encoder": (0, 0), "text": "a glass bottle"}, 300, 0),
    ("TextEncode", {"text_encoder": (0, 0), "text": ""}, 300, 200),
    ("StageCSampler", {"stage_c": (1, 0), "positive": (3, 0), "negative": (4, 0), "seed": 5, "steps": 4,
                       "cfg": 4.0, "sampler": "ddpm", "delay": 0.0}, 620, 0),
    ("StageADecode", {"stage_a": (2, 0), "latent": (5, 0)}, 920, 0),
    ("SaveImage", {"images": (6, 0), "filename_prefix": "big"}, 1200, 0),
)
CELL = (1500, 460)  # graph units per copy, so copies never overlap
COLUMNS = 8


def big_document(count: int = 500) -> dict:
    """Our workflow document with exactly `count` nodes (ids "1".."count") and 9 links per full copy.

    Node positions are in graph units; the saved view is the identity (the caller fits it)."""
    nodes: dict[str, dict] = {}
    copy = 0
    while len(nodes) + len(_COPY) <= count:
        base = len(nodes)
        ox, oy = (copy % COLUMNS) * CELL[0], (copy // COLUMNS) * CELL[1]
        for i, (cls, inputs, x, y) in enumerate(_COPY):
            ins = {k: [str(base + v[0] + 1), v[1]] if isinstance(v, tuple) else v for k, v in inputs.items()}
            nodes[str(base + i + 1)] = {"class_type": cls, "inputs": ins, "ui": {"pos": [ox + x, oy + y]}}
        copy += 1
    while len(nodes) < count:  # the remainder: unlinked loaders in one more row
        i = len(nodes)
        nodes[str(i + 1)] = {"class_type": "LoadStageA", "inputs": {"file": FILES[0]},
                             "ui": {"pos": [(i % COLUMNS) * 300, (copy // COLUMNS + 1) * CELL[1]]}}
    return {"version": 1, "nodes": nodes, "ui": {"view": {"offset": [0, 0], "scale": 1}, "notes": []}}
