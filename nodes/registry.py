"""The node registry: every node class the app offers, by its stable class_type name."""
from __future__ import annotations

from engine.schema import Node
from nodes.effnet import EffNetEncode
from nodes.images import LoadImage, PreviewImage, SaveImage
from nodes.loaders import LoadEffNet, LoadPreviewer, LoadStageA, LoadStageB, LoadStageC, LoadTextEncoder
from nodes.stage_a import StageADecode, StageAEncode
from nodes.stage_b import StageBSampler
from nodes.stage_c import StageCSampler
from nodes.text import TextEncode

NODES: dict[str, type[Node]] = {
    "LoadTextEncoder": LoadTextEncoder,
    "LoadStageC": LoadStageC,
    "LoadStageB": LoadStageB,
    "LoadStageA": LoadStageA,
    "LoadEffNet": LoadEffNet,
    "LoadPreviewer": LoadPreviewer,
    "TextEncode": TextEncode,
    "StageCSampler": StageCSampler,
    "StageBSampler": StageBSampler,
    "StageADecode": StageADecode,
    "StageAEncode": StageAEncode,
    "EffNetEncode": EffNetEncode,
    "LoadImage": LoadImage,
    "SaveImage": SaveImage,
    "PreviewImage": PreviewImage,
}

try:  # TEMPORARY until nodes/lora.py (LoRA engineer) lands; then a plain import
    from nodes.lora import LoRA, LoRAStageB
    NODES.update({"LoRA": LoRA, "LoRAStageB": LoRAStageB})
except ImportError:
    pass
