"""CLIPTextEncode: prompts chunked by 77 tokens, (words:1.2) emphasis."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
