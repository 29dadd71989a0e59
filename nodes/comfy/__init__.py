"""ComfyUI's node classes for Stable Cascade, as a thin layer over our core (models/, samplers, residency).

Exact class names, input names, types, defaults, ranges and output order, so ComfyUI API prompts validate
and run unchanged. Each module holds one family and exports ``NODES``; `COMFY_NODES` merges them.
What backs each class, and where it differs from ComfyUI, is in docs/comfy_mapping.md.
"""
from __future__ import annotations

from engine.schema import Node
from nodes.comfy import conditioning, controlnet, images, latent, loaders, masks, sampling, text, vision

COMFY_NODES: dict[str, type[Node]] = {}
for _module in (loaders, text, conditioning, sampling, latent, vision, controlnet, images, masks):
    COMFY_NODES.update(_module.NODES)
