"""Widget inputs shared by the two sampler nodes, and the live-preview bridge to ctx.progress."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from engine.schema import Input, RunContext
from models.patching import ModelHandle
from models.sampling import SAMPLERS, SCHEDULERS
from nodes import types as T
from runtime.model_use import using

SEED_MAX = 0xFFFF_FFFF_FFFF_FFFF  # torch.Generator.manual_seed takes 0 … 2**64-1; item i wraps seed+i
SHIFT_MIN = 0.01


def seed_input() -> Input:
    return Input("seed", T.INT, default=0, min=0, max=SEED_MAX, seed=True,
                 tooltip="noise seed; image i of a batch uses seed+i, so it equals a batch-1 run with that seed")


def sampler_inputs(*, steps: int, cfg: float, shift: float) -> tuple[Input, ...]:
    """steps, cfg, sampler, scheduler, shift, cfg_rho with the given stage's official defaults."""
    return (
        Input("steps", T.INT, default=steps, min=1, max=1000, tooltip="number of denoising steps"),
        Input("cfg", T.FLOAT, default=cfg, min=0.0, max=100.0, step=0.1,
              tooltip="classifier-free guidance scale (1.0 = no guidance, skips the negative pass)"),
        Input("sampler", T.COMBO, default="ddpm", choices=tuple(SAMPLERS),
              tooltip="ddpm is the official Stable Cascade (GDF) sampler; the others are k-diffusion samplers"),
        Input("scheduler", T.COMBO, default="simple", choices=tuple(SCHEDULERS),
              tooltip="noise schedule spacing (the ddpm sampler always uses the official GDF time grid)"),
        # shift divides (logSNR += 2 log(1/shift)): 0 would pass validation and then divide by zero.
        Input("shift", T.FLOAT, default=shift, min=SHIFT_MIN, max=100.0, step=0.01,
              tooltip="logSNR shift of the cosine schedule (official: 2.0 for Stage C, 1.0 for Stage B)"),
        Input("cfg_rho", T.FLOAT, default=0.7, min=0.0, max=1.0, step=0.05,
              tooltip="official CFG rescale strength (0.7 in the official code; 0 = plain CFG like ComfyUI)"),
    )


def preview_callback(ctx: RunContext, previewer: ModelHandle | None,
                     size: int = 512) -> Callable[[int, int, torch.Tensor], None]:
    """callback(step, total, x0) reporting progress, with a Previewer image of x0 when one is given."""

    def callback(step: int, total: int, x0: torch.Tensor) -> None:
        ctx.check_interrupted()
        image = None
        if previewer is not None:
            with using(ctx.env, previewer) as net:
                rgb = net(x0[:1].to(dtype=next(net.parameters()).dtype))
            image = to_pil(rgb[0], size)
        ctx.progress(min(step, total), total, image)

    return callback


def to_pil(chw01: torch.Tensor, max_size: int | None = None) -> Image.Image:
    """[3,H,W] in [0,1] → PIL RGB, optionally upscaled (nearest) so tiny previews stay visible."""
    arr = (chw01.float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    img = Image.fromarray(arr)
    if max_size and max(img.size) < max_size // 2:
        factor = max(1, max_size // 2 // max(img.size))
        img = img.resize((img.width * factor, img.height * factor), Image.NEAREST)
    return img


def env_preview_size(env: Any) -> int:
    return int(getattr(getattr(env, "config", None), "preview_size", 512) or 512)
