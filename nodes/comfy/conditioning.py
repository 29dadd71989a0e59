"""ConditioningZeroOut, ConditioningCombine, StableCascade_StageB_Conditioning."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
