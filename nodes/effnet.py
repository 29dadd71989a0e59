"""EffNetEncode: image → Stage C latent, the start point for image-to-image."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.schema import Input, Node, Output, RunContext
from models.patching import ModelHandle
from nodes import types as T
from models.sampling import stage_c_hw
from runtime.model_use import module_device, module_dtype, using
from nodes.stage_a import image_to_bchw


class EffNetEncode(Node):
    """Encode an image into a Stage C latent (feed it to Stage C's init with denoise < 1)."""

    TITLE = "EffNet Encode"
    CATEGORY = "stable_cascade/latent"
    INPUTS = (
        Input("effnet", T.EFFNET, tooltip="the EfficientNet encoder"),
        Input("image", T.IMAGE, tooltip="the image to encode; the output image keeps its size"),
    )
    OUTPUTS = (Output("stage_c_latent", T.STAGE_C_LATENT, "Stage C latent of the image"),)

    def run(self, ctx: RunContext, effnet: ModelHandle, image: torch.Tensor) -> tuple:
        x = image_to_bchw(image)
        height, width = int(x.shape[-2]), int(x.shape[-1])  # exact: Stage B rounds up, Stage A crops back
        h, w = stage_c_hw(width, height)
        # EffNet downsamples by 32, Stage C's grid is 1/42.67: resize so the two grids coincide
        # (the official training feeds EffNet a 0.75× image for the same reason).
        x = F.interpolate(x, size=(h * 32, w * 32), mode="bicubic", align_corners=False, antialias=True)
        with using(ctx.env, effnet) as net:
            latent = net(x.clamp(0, 1).to(module_device(net), module_dtype(net)))
        return (T.StageCLatent(latent.float().cpu(), height, width),)
