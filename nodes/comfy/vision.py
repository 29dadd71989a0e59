"""Image variation: unCLIPCheckpointLoader, CLIPVisionLoader, CLIPVisionEncode, unCLIPConditioning.

CLIP_VISION is a ModelHandle of models.clip_vision.ClipVision; CLIP_VISION_OUTPUT a types.ClipVisionOutput.
"""
from __future__ import annotations

from typing import Any

from engine.schema import COMBO, FLOAT, Input, Node, Output, RunContext
from models.clip_vision import CROPS, ClipVision
from models.patching import ModelHandle
from nodes.comfy import types as C
from nodes.comfy.files import FileLoader, load_part
from nodes.comfy.loaders import CheckpointLoaderSimple
from runtime.model_use import using


class CLIPVisionLoader(FileLoader):
    """Load a CLIP vision encoder (ViT-L/14 for Stable Cascade's image variation) from the clip_vision folder."""

    TITLE = "Load CLIP Vision"
    CATEGORY = "loaders"
    FOLDER, FILE_INPUT = "clip_vision", "clip_name"
    EXPECTED = "a CLIP ViT-L/14 vision tower"
    INPUTS = (Input("clip_name", COMBO, choices=lambda env: env.comfy_files("clip_vision")),)
    OUTPUTS = (Output("CLIP_VISION", C.CLIP_VISION),)

    @classmethod
    def _needed(cls, kinds):
        return ["clip_vision"] if "clip_vision" in kinds else []

    def run(self, ctx: RunContext, clip_name: str) -> tuple:
        path, _ = self._file(ctx, clip_name)
        return (load_part(ctx.env, path, "clip_vision"),)


class unCLIPCheckpointLoader(CheckpointLoaderSimple):  # noqa: N801  (ComfyUI's class name)
    """CheckpointLoaderSimple plus the checkpoint's CLIP vision tower (ComfyUI's `clip_l_vision.` part); the
    CLIP_VISION output is None when the file has none (CLIPVisionEncode then names the problem)."""

    TITLE = "unCLIPCheckpointLoader"
    CATEGORY = "loaders"
    OUTPUTS = CheckpointLoaderSimple.OUTPUTS + (Output("CLIP_VISION", C.CLIP_VISION),)

    @classmethod
    def _needed(cls, kinds):
        base = CheckpointLoaderSimple._needed(kinds)
        return base + ["clip_vision"] if base and "clip_vision" in kinds else base

    def run(self, ctx: RunContext, ckpt_name: str) -> tuple:
        model, clip, vae = super().run(ctx, ckpt_name)
        path, kinds = self._file(ctx, ckpt_name)
        vision = load_part(ctx.env, path, "clip_vision") if "clip_vision" in kinds else None
        return (model, clip, vae, vision)


class CLIPVisionEncode(Node):
    """Encode images with CLIP vision: image_embeds [B,768] for unCLIPConditioning (image variation)."""

    TITLE = "CLIP Vision Encode"
    CATEGORY = "conditioning"
    INPUTS = (Input("clip_vision", C.CLIP_VISION), Input("image", C.IMAGE),
              # Optional here (ComfyUI requires it) so prompts saved before it existed still run.
              Input("crop", COMBO, default="center", choices=CROPS, optional=True))
    OUTPUTS = (Output("CLIP_VISION_OUTPUT", C.CLIP_VISION_OUTPUT),)

    def run(self, ctx: RunContext, clip_vision: Any, image: Any, crop: str = "center") -> tuple:
        if clip_vision is None:
            raise ValueError("clip_vision: the checkpoint holds no CLIP vision model; load one with CLIPVisionLoader")
        if not isinstance(clip_vision, ModelHandle) or not isinstance(clip_vision.module, ClipVision):
            raise TypeError(f"clip_vision: expected a CLIP_VISION, got {type(clip_vision).__name__}")
        with using(ctx.env, clip_vision) as tower:
            embeds, last, penultimate = tower.encode(image, crop)
        return (C.ClipVisionOutput(embeds.cpu(), last.cpu(), {"penultimate_hidden_states": penultimate.cpu()}),)


class unCLIPConditioning(Node):  # noqa: N801  (ComfyUI's class name)
    """Add a CLIP vision output to every entry (Stage C's clip_img = image_embeds x strength)."""

    TITLE = "unCLIPConditioning"
    CATEGORY = "conditioning"
    INPUTS = (Input("conditioning", C.CONDITIONING), Input("clip_vision_output", C.CLIP_VISION_OUTPUT),
              Input("strength", FLOAT, default=1.0, min=-10.0, max=10.0, step=0.01),
              Input("noise_augmentation", FLOAT, default=0.0, min=0.0, max=1.0, step=0.01))
    OUTPUTS = (Output("CONDITIONING", C.CONDITIONING),)

    def run(self, ctx: RunContext, conditioning: Any, clip_vision_output: Any, strength: float,
            noise_augmentation: float) -> tuple:
        if not isinstance(clip_vision_output, C.ClipVisionOutput):
            raise TypeError(f"clip_vision_output: expected a CLIP_VISION_OUTPUT, got {type(clip_vision_output).__name__}")
        if strength == 0:
            return (conditioning,)
        item = {"clip_vision_output": clip_vision_output, "strength": float(strength),
                "noise_augmentation": float(noise_augmentation)}
        out = [[hidden, {**extras, "unclip_conditioning": [*extras.get("unclip_conditioning", []), item]}]
               for hidden, extras in C.entries(conditioning)]
        return (out,)


NODES: dict[str, type[Node]] = {
    "unCLIPCheckpointLoader": unCLIPCheckpointLoader,
    "CLIPVisionLoader": CLIPVisionLoader,
    "CLIPVisionEncode": CLIPVisionEncode,
    "unCLIPConditioning": unCLIPConditioning,
}
