"""KSampler and KSamplerAdvanced over the Stable Cascade sigmas, with ComfyUI's noise stream."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
