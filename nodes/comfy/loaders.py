"""Loaders: CheckpointLoaderSimple, UNETLoader, CLIPLoader, VAELoader, LoraLoader, LoraLoaderModelOnly, ModelSamplingStableCascade."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
