"""The node registry: every node class the app offers, by its stable class_type name."""
from __future__ import annotations

from engine.schema import Node
from nodes.comfy import COMFY_NODES
from nodes.control_filters import CannyHint, InpaintingHint, SuperResolutionHint
from nodes.controlnet import ApplyControlNet, LoadControlNet
from nodes.effnet import EffNetEncode
from nodes.images import LoadImage, PreviewImage, SaveImage
from nodes.loaders import LoadEffNet, LoadPreviewer, LoadStageA, LoadStageB, LoadStageC, LoadTextEncoder
from nodes.lora import LoRA, LoRAStageB
from nodes.stage_a import StageADecode, StageAEncode
from nodes.stage_b import StageBSampler
from nodes.stage_c import StageCSampler
from nodes.text import TextEncode
from nodes.vision import ImagePrompt, LoadCLIPVision

NODES: dict[str, type[Node]] = {
    "LoadTextEncoder": LoadTextEncoder,
    "LoadStageC": LoadStageC,
    "LoadStageB": LoadStageB,
    "LoadStageA": LoadStageA,
    "LoadEffNet": LoadEffNet,
    "LoadPreviewer": LoadPreviewer,
    "LoadCLIPVision": LoadCLIPVision,
    "ImagePrompt": ImagePrompt,
    "LoRA": LoRA,
    "LoRAStageB": LoRAStageB,
    "TextEncode": TextEncode,
    "StageCSampler": StageCSampler,
    "StageBSampler": StageBSampler,
    "StageADecode": StageADecode,
    "StageAEncode": StageAEncode,
    "EffNetEncode": EffNetEncode,
    "LoadImage": LoadImage,
    "SaveImage": SaveImage,
    "PreviewImage": PreviewImage,
    "LoadControlNet": LoadControlNet,
    "ApplyControlNet": ApplyControlNet,
    "CannyHint": CannyHint,
    "InpaintingHint": InpaintingHint,
    "SuperResolutionHint": SuperResolutionHint,
}
# ComfyUI's classes (nodes/comfy/); LoadImage, SaveImage and PreviewImage above are shared with them.
NODES.update({k: v for k, v in COMFY_NODES.items() if k not in NODES})
