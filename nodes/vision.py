"""Image variation with our nodes: LoadCLIPVision, ImagePrompt, and StageCSampler's `image_prompt` input.

The official path (docs/image_variation.md): Stability's CLIP preprocessing, image_embeds [B,768] of the
CLIP ViT-L/14 vision tower, times a strength per image, stacked along Stage C's token axis as clip_img
[B, N, 768] for the positive; the negative keeps one zero token (as the official unconditional pass).
"""
from __future__ import annotations

from typing import Any

import torch

from engine.schema import Input, Node, Output, RunContext
from models.clip_vision import ClipVision, image_tokens
from models.patching import ModelHandle
from nodes import types as T
from nodes.loaders import _Loader, _loader_inputs
from runtime.model_use import using

CLIP_VISION = "CLIP_VISION"  # the same socket type as ComfyUI's CLIPVisionLoader/unCLIPCheckpointLoader output
IMAGE_PROMPT = "IMAGE_PROMPT"  # a tuple of (image_embeds [B,768] float32 on CPU, strength) pairs, oldest first


class LoadCLIPVision(_Loader):
    """Load the CLIP ViT-L/14 vision tower for image variation: from the weights folder's clip_vision/
    (ComfyUI's folder of that name), or the tower inside an all-in-one Stage C checkpoint (`clip_l_vision.*`)."""

    KIND, TITLE = "clip_vision", "Load CLIP Vision"
    INPUTS = _loader_inputs("clip_vision", "CLIP ViT-L/14 vision tower")
    OUTPUTS = (Output("clip_vision", CLIP_VISION, "the CLIP vision tower"),)


def _tower(value: Any) -> ModelHandle:
    if not isinstance(value, ModelHandle) or not isinstance(value.module, ClipVision):
        raise TypeError(f"clip_vision: expected a CLIP_VISION (a CLIP ViT-L/14 vision tower), got {type(value).__name__}")
    return value


def as_image_prompt(value: Any) -> tuple[tuple[torch.Tensor, float], ...]:
    """Validate an IMAGE_PROMPT value: a tuple of (embeds [B,768], strength). TypeError/ValueError otherwise."""
    if not isinstance(value, tuple) or not all(
            isinstance(p, tuple) and len(p) == 2 and torch.is_tensor(p[0]) and p[0].dim() == 2
            and isinstance(p[1], float) for p in value):
        raise TypeError(f"image_prompt: expected an IMAGE_PROMPT (from an Image Prompt node), got {type(value).__name__}")
    return value


class ImagePrompt(Node):
    """Encode an image with CLIP vision for image variation; chain several through `image_prompt`."""

    TITLE = "Image Prompt"
    CATEGORY = "stable_cascade/conditioning"
    INPUTS = (
        Input("clip_vision", CLIP_VISION, tooltip="the CLIP ViT-L/14 vision tower"),
        Input("image", T.IMAGE, tooltip="the image whose content and style Stage C should follow; shortest side "
                                        "to 224 and centre-cropped, as the official code does"),
        Input("strength", T.FLOAT, default=1.0, min=-10.0, max=10.0, step=0.01,
              tooltip="multiplies the image embedding; 0 leaves this image out"),
        Input("image_prompt", IMAGE_PROMPT, optional=True, tooltip="earlier images to keep (several images "
                                                                   "add 4 Stage C tokens each)"),
    )
    OUTPUTS = (Output("image_prompt", IMAGE_PROMPT, "the image embeddings with their strengths"),)

    def run(self, ctx: RunContext, clip_vision: ModelHandle, image: torch.Tensor, strength: float,
            image_prompt: Any = None) -> tuple:
        before = as_image_prompt(image_prompt) if image_prompt is not None else ()
        if strength == 0:  # nothing to add (ComfyUI's unCLIPConditioning skips strength 0 the same way)
            return (before,)
        with using(ctx.env, _tower(clip_vision)) as tower:
            embeds = tower.encode_official(image).cpu()
        return (before + ((embeds, float(strength)),),)


def clip_img_pair(image_prompt: Any, batch: int, width: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) clip_img for StageCSampler: [batch, N, width] embeds x strength (N images) and the
    official negative, zeros [1, 1, width]. ValueError when an image batch is neither 1 nor `batch`, or the
    embeds are not `width` wide (a vision tower of another size)."""
    pairs = as_image_prompt(image_prompt)
    for embeds, _ in pairs:
        if embeds.shape[-1] != width:
            raise ValueError(f"image_prompt: image embeds are {embeds.shape[-1]} wide; this Stage C takes {width}")
        if embeds.shape[0] not in (1, batch):
            raise ValueError(f"image_prompt: {embeds.shape[0]} images in one Image Prompt for a batch of {batch}; "
                             "use one image per Image Prompt (chain them), or match the batch size")
    positive = image_tokens([(e[:, None], s) for e, s in pairs], batch)
    return positive.to(device), torch.zeros(1, 1, width, device=device)


NODES: dict[str, type[Node]] = {"LoadCLIPVision": LoadCLIPVision, "ImagePrompt": ImagePrompt}
