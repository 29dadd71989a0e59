"""Stage A (VQGAN) nodes: Stage B latent ↔ pixels."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.schema import Input, Node, Output, RunContext
from models.patching import ModelHandle
from nodes import types as T
from models.stage_a_tiles import TILE_MODES, decode, should_tile
from runtime.admission import check_run, decode_tile
from runtime.model_use import module_device, module_dtype, using


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
        Input("tiled", T.COMBO, default="auto", choices=TILE_MODES, optional=True,
              tooltip="decode in 1024² tiles with overlap so memory stays flat with size (same image up to "
                      "float rounding); auto: above 2048²"),
    )
    OUTPUTS = (Output("image", T.IMAGE, "decoded image at the size the latent stands for"),)

    def run(self, ctx: RunContext, stage_a: ModelHandle, stage_b_latent: T.StageBLatent | torch.Tensor,
            tiled: str = "auto") -> tuple:
        samples = getattr(stage_b_latent, "samples", stage_b_latent)
        tiles = should_tile(tiled, tuple(samples.shape[-2:]))
        # A tiled decode's network peak is one piece's, whatever the image size; the image is whole.
        check_run(ctx.env, "stage_a", stage_a.module, 4 * samples.shape[-1], 4 * samples.shape[-2],
                  samples.shape[0], False, tile=decode_tile(tiled, stage_a.module.config, tuple(samples.shape[-2:])))
        with using(ctx.env, stage_a) as net:
            out = decode(net, samples.to(module_device(net), module_dtype(net)), "always" if tiles else "never")
        if isinstance(stage_b_latent, T.StageBLatent):  # drop the rows/columns added to round the grid up
            out = out[..., :stage_b_latent.height, :stage_b_latent.width]
        return (bchw_to_image(out),)


class StageAEncode(Node):
    """Encode an image into a Stage B latent with Stage A (any size: padded to multiples of 4 inside)."""

    TITLE = "Stage A Encode"
    CATEGORY = "stable_cascade/latent"
    INPUTS = (
        Input("stage_a", T.STAGE_A, tooltip="the Stage A VQGAN"),
        Input("image", T.IMAGE, tooltip="the image to encode"),
    )
    OUTPUTS = (Output("stage_b_latent", T.STAGE_B_LATENT, "4-channel latent at 1/4 of the image size"),)

    def run(self, ctx: RunContext, stage_a: ModelHandle, image: torch.Tensor) -> tuple:
        x = image_to_bchw(image)
        height, width = x.shape[-2:]
        # Stage A's encoder halves twice (PixelUnshuffle(2), then a stride-2 conv): pad to multiples of 4
        # by repeating the edge, so decoding and cropping gives back an image of the same size.
        pad_h, pad_w = -height % 4, -width % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        # The image's size is known only now; the encoder mirrors the decoder, so its estimate stands in.
        check_run(ctx.env, "stage_a", stage_a.module, x.shape[-1], x.shape[-2], x.shape[0], False)
        with using(ctx.env, stage_a) as net:
            latent = net.encode(x.to(module_device(net), module_dtype(net)))
        return (T.StageBLatent(latent.float().cpu(), int(height), int(width)),)
