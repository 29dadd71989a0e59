"""Stage A (VQGAN) nodes: Stage B latent ↔ pixels."""
from __future__ import annotations

import torch

from engine.schema import Input, Node, Output, RunContext
from models.patching import ModelHandle
from nodes import types as T
from nodes.runtime import module_device, module_dtype, using


def image_to_bchw(image: torch.Tensor) -> torch.Tensor:
    """IMAGE [B,H,W,C] → [B,3,H,W] float32 (alpha dropped, grey expanded)."""
    x = image.float().permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x[:, :3]


def bchw_to_image(x: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] in [0,1] → IMAGE [B,H,W,3] float32 on the CPU."""
    return x.float().clamp(0, 1).permute(0, 2, 3, 1).contiguous().cpu()


class StageADecode(Node):
    """Decode a Stage B latent into an image with Stage A."""

    TITLE = "Stage A Decode"
    CATEGORY = "stable_cascade/latent"
    INPUTS = (
        Input("stage_a", T.STAGE_A, tooltip="the Stage A VQGAN"),
        Input("stage_b_latent", T.STAGE_B_LATENT, tooltip="the Stage B sampler's output"),
    )
    OUTPUTS = (Output("image", T.IMAGE, "decoded image, 4× the latent size"),)

    def run(self, ctx: RunContext, stage_a: ModelHandle, stage_b_latent: torch.Tensor) -> tuple:
        with using(ctx.env, stage_a) as net:
            out = net.decode(stage_b_latent.to(module_device(net), module_dtype(net)))
        return (bchw_to_image(out),)


class StageAEncode(Node):
    """Encode an image into a Stage B latent with Stage A (sides are cropped to multiples of 4)."""

    TITLE = "Stage A Encode"
    CATEGORY = "stable_cascade/latent"
    INPUTS = (
        Input("stage_a", T.STAGE_A, tooltip="the Stage A VQGAN"),
        Input("image", T.IMAGE, tooltip="the image to encode"),
    )
    OUTPUTS = (Output("stage_b_latent", T.STAGE_B_LATENT, "4-channel latent at 1/4 of the image size"),)

    def run(self, ctx: RunContext, stage_a: ModelHandle, image: torch.Tensor) -> tuple:
        x = image_to_bchw(image)
        h, w = x.shape[-2] // 4 * 4, x.shape[-1] // 4 * 4
        with using(ctx.env, stage_a) as net:
            latent = net.encode(x[..., :h, :w].to(module_device(net), module_dtype(net)))
        return (latent.float().cpu(),)
