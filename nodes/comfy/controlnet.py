"""ControlNets: ControlNetLoader, ControlNetApply, ControlNetApplyAdvanced."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
