"""Image variation: unCLIPCheckpointLoader, CLIPVisionLoader, CLIPVisionEncode, unCLIPConditioning."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
