"""Mask classes: InvertMask, ThresholdMask, GrowMask, SolidMask."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
