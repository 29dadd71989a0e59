"""Image variation: unCLIPCheckpointLoader, CLIPVisionLoader, CLIPVisionEncode, unCLIPConditioning.

CLIP_VISION is a ModelHandle of models.clip_vision.ClipVision; CLIP_VISION_OUTPUT a types.ClipVisionOutput.
"""
from __future__ import annotations

from typing import Any

from engine.schema import COMBO, FLOAT, Input, Node, Output, RunContext
from models.clip_vision import CROPS, ClipVision
from models.patching import ModelHandle
from nodes.comfy import types as C
from nodes.comfy.controlnet import _stamp, load_comfy_model, missing_file
from runtime.model_use import using


class CLIPVisionLoader(Node):
    """Load a CLIP vision encoder (ViT-L/14 for Stable Cascade's image variation) from the clip_vision folder."""

    TITLE = "Load CLIP Vision"
    CATEGORY = "loaders"
    INPUTS = (Input("clip_name", COMBO, choices=lambda env: env.comfy_files("clip_vision")),)
    OUTPUTS = (Output("CLIP_VISION", C.CLIP_VISION),)

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        return missing_file(env, "clip_vision", "clip_name", inputs.get("clip_name"))

    @classmethod
    def fingerprint(cls, env: Any, inputs: dict) -> Any:
        return _stamp(env, "clip_vision", inputs.get("clip_name"))

    def run(self, ctx: RunContext, clip_name: str) -> tuple:
        return (load_comfy_model(ctx.env, "clip_vision", clip_name, "clip_vision"),)


def checkpoint_clip_vision(env: Any, ckpt_name: str) -> ModelHandle | None:
    """The CLIP vision tower inside a checkpoints/ file (ComfyUI's `clip_l_vision.` part), or None if it has none."""
    from models.loading import detect

    path = env.comfy_path("checkpoints", ckpt_name)
    if path is None:
        raise FileNotFoundError(f"{ckpt_name!r} is not in the checkpoints folder")
    if not any(c.kind == "clip_vision" for c in detect(path).components):
        return None
    return load_comfy_model(env, "checkpoints", ckpt_name, "clip_vision")


class unCLIPCheckpointLoader(Node):  # noqa: N801  (ComfyUI's class name)
    """CheckpointLoaderSimple plus the checkpoint's CLIP vision tower (the Stage C all-in-one file has one)."""

    TITLE = "unCLIPCheckpointLoader"
    CATEGORY = "loaders"
    INPUTS = (Input("ckpt_name", COMBO, choices=lambda env: env.comfy_files("checkpoints")),)
    OUTPUTS = (Output("MODEL", C.MODEL), Output("CLIP", C.CLIP), Output("VAE", C.VAE),
               Output("CLIP_VISION", C.CLIP_VISION))

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        return missing_file(env, "checkpoints", "ckpt_name", inputs.get("ckpt_name"))

    @classmethod
    def fingerprint(cls, env: Any, inputs: dict) -> Any:
        return _stamp(env, "checkpoints", inputs.get("ckpt_name"))

    def run(self, ctx: RunContext, ckpt_name: str) -> tuple:
        from nodes.comfy.loaders import NODES as LOADERS  # imported late: a sibling module of the family

        simple = LOADERS.get("CheckpointLoaderSimple")
        if simple is None:
            raise RuntimeError("unCLIPCheckpointLoader needs CheckpointLoaderSimple, which is not available")
        model, clip, vae = tuple(simple().run(ctx, ckpt_name=ckpt_name))[:3]
        return (model, clip, vae, checkpoint_clip_vision(ctx.env, ckpt_name))


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
