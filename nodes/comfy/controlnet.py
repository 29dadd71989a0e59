"""ControlNets: ControlNetLoader, ControlNetApply, ControlNetApplyAdvanced.

Applying a ControlNet only records it on the conditioning (extras["control"], a `ControlNetApplied`);
KSampler asks it for Stage C's `cnet=` residuals at each step (`residuals_for` below).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from engine.schema import COMBO, FLOAT, Input, Node, Output, RunContext
from models.controlnet import ControlNet
from models.patching import ModelHandle
from nodes.comfy import types as C
from nodes.comfy.files import FileLoader, load_part
from runtime.control import merge, residuals

FOLDER = "controlnet"
HINT_MULTIPLE = 8  # ComfyUI rounds the hint size up to a multiple of the adapter's unshuffle amount (8)


# -- loading --------------------------------------------------------------------------------------
class ControlNetLoader(FileLoader):
    """Load a Stable Cascade ControlNet (canny, inpainting, super-resolution) from the controlnet folder."""

    TITLE = "Load ControlNet Model"
    CATEGORY = "loaders"
    FOLDER, FILE_INPUT = FOLDER, "control_net_name"
    EXPECTED = "a Stable Cascade ControlNet (canny, inpainting or super-resolution)"
    INPUTS = (Input("control_net_name", COMBO, choices=lambda env: env.comfy_files(FOLDER)),)
    OUTPUTS = (Output("CONTROL_NET", C.CONTROL_NET),)

    @classmethod
    def _needed(cls, kinds):
        return ["controlnet"] if "controlnet" in kinds else []

    def run(self, ctx: RunContext, control_net_name: str) -> tuple:
        path, _ = self._file(ctx, control_net_name)
        return (load_part(ctx.env, path, "controlnet"),)


# -- applying -------------------------------------------------------------------------------------
def _control_handle(value: Any) -> ModelHandle:
    if not isinstance(value, ModelHandle) or not isinstance(value.module, ControlNet):
        raise TypeError(f"control_net: expected a CONTROL_NET (from ControlNetLoader), got {type(value).__name__}")
    return value


def _hint(image: Any) -> torch.Tensor:
    if not torch.is_tensor(image) or image.dim() != 4:
        raise TypeError(f"image: expected an IMAGE [B,H,W,C], got {tuple(getattr(image, 'shape', ())) or type(image).__name__}")
    return image.float().movedim(-1, 1)


def apply(conds: list[list[list]], handle: ModelHandle, env: Any, image: Any, strength: float,
          start: float = 0.0, end: float = 1.0, to_uncond: bool = False) -> list[list[list]]:
    """Each conditioning list with every entry copied and extras["control"] set, chained to its previous
    control; entries that shared a previous control share the new one (so it runs once per step)."""
    hint = _hint(image)
    made: dict[int, C.ControlNetApplied] = {}
    out = []
    for cond in conds:
        new = []
        for hidden, extras in C.entries(cond):
            prev = extras.get("control")
            applied = made.get(id(prev))
            if applied is None:
                applied = made[id(prev)] = C.ControlNetApplied(handle, env, hint, float(strength), float(start),
                                                               float(end), prev)
            new.append([hidden, {**extras, "control": applied, "control_apply_to_uncond": to_uncond}])
        out.append(new)
    return out


class ControlNetApply(Node):
    """Apply a ControlNet to one conditioning (ComfyUI's older node; also applied to the negative side)."""

    TITLE = "Apply ControlNet (OLD)"
    CATEGORY = "conditioning/controlnet"
    INPUTS = (Input("conditioning", C.CONDITIONING), Input("control_net", C.CONTROL_NET),
              Input("image", C.IMAGE), Input("strength", FLOAT, default=1.0, min=0.0, max=10.0, step=0.01))
    OUTPUTS = (Output("CONDITIONING", C.CONDITIONING),)

    def run(self, ctx: RunContext, conditioning: Any, control_net: Any, image: Any, strength: float) -> tuple:
        handle = _control_handle(control_net)
        if strength == 0:
            return (conditioning,)
        return (apply([conditioning], handle, ctx.env, image, strength, to_uncond=True)[0],)


class ControlNetApplyAdvanced(Node):
    """Apply a ControlNet to a positive/negative pair over a part of the sampling (start/end percent)."""

    TITLE = "Apply ControlNet"
    CATEGORY = "conditioning/controlnet"
    INPUTS = (Input("positive", C.CONDITIONING), Input("negative", C.CONDITIONING),
              Input("control_net", C.CONTROL_NET), Input("image", C.IMAGE),
              Input("strength", FLOAT, default=1.0, min=0.0, max=10.0, step=0.01),
              Input("start_percent", FLOAT, default=0.0, min=0.0, max=1.0, step=0.001),
              Input("end_percent", FLOAT, default=1.0, min=0.0, max=1.0, step=0.001),
              Input("vae", C.VAE, optional=True))
    OUTPUTS = (Output("positive", C.CONDITIONING), Output("negative", C.CONDITIONING))

    def run(self, ctx: RunContext, positive: Any, negative: Any, control_net: Any, image: Any, strength: float,
            start_percent: float, end_percent: float, vae: Any = None) -> tuple:
        # vae: ComfyUI encodes the hint with it only for latent-space ControlNets; Stable Cascade's take pixels.
        handle = _control_handle(control_net)
        if strength == 0:
            return (positive, negative)
        pos, neg = apply([positive, negative], handle, ctx.env, image, strength, start_percent, end_percent)
        return (pos, neg)


# -- at sampling time -----------------------------------------------------------------------------
def prepare_hint(hint: torch.Tensor, x_shape: tuple[int, ...], c_in: int, compression: int,
                 method: str) -> torch.Tensor:
    """ComfyUI's hint for a latent of x_shape: size (h, w) x compression rounded up to a multiple of 8,
    reached by a centre crop to that aspect then `method` ("bilinear" or "nearest-exact"); RGB averaged
    for a 1-channel ControlNet; the batch repeated (cyclically) to the latent's. [B, c_in, H', W'] float32.

    Raises ValueError when the channels do not fit the ControlNet.
    """
    b, _, h, w = x_shape
    height = math.ceil(h * compression / HINT_MULTIPLE) * HINT_MULTIPLE
    width = math.ceil(w * compression / HINT_MULTIPLE) * HINT_MULTIPLE
    s = hint.float()
    old_h, old_w = s.shape[-2:]
    old_aspect, new_aspect = old_w / old_h, width / height
    if old_aspect > new_aspect:
        x0 = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
        s = s[..., x0:old_w - x0]
    elif old_aspect < new_aspect:
        y0 = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
        s = s[..., y0:old_h - y0, :]
    s = F.interpolate(s, size=(height, width), mode=method)
    if c_in == 1 and s.shape[1] > 1:
        s = s.mean(dim=1, keepdim=True)
    if s.shape[1] != c_in:
        raise ValueError(f"image: this ControlNet takes {c_in}-channel control images "
                         f"({'RGB + mask' if c_in == 4 else 'a Stage C latent as an IMAGE' if c_in == 16 else 'RGB'}), "
                         f"got {s.shape[1]} channels")
    if s.shape[0] not in (1, b):
        s = s.repeat(math.ceil(b / s.shape[0]), 1, 1, 1)[:b]
    return s


def _own_residuals(c: C.ControlNetApplied, x_shape: tuple[int, ...]) -> list[torch.Tensor | None]:
    """This control's residuals x strength for a latent shape (prepared and run once per shape)."""
    key = (x_shape[0],) + tuple(x_shape[2:])
    if key not in c.cache:
        cfg = c.control.module.config
        hint = prepare_hint(c.hint, x_shape, cfg.c_in, cfg.compression, cfg.upscale_method)
        out = residuals(c.env, c.control, hint, c.strength)  # the core path our ApplyControlNet shares
        c.cache.clear()  # one shape at a time, as ComfyUI keeps one prepared hint
        c.cache[key] = out
    return c.cache[key]


def residuals_for(c: C.ControlNetApplied, x_shape: tuple[int, ...], sigma: Any,
                  percent_to_sigma: Callable[[float], float]) -> list[torch.Tensor | None] | None:
    """See `ControlNetApplied.stage_c_inputs` (ComfyUI's get_control for its Stable Cascade adapter)."""
    if len(x_shape) != 4:
        raise ValueError(f"expected a latent shape [B,C,h,w], got {x_shape}")
    prev = c.previous.stage_c_inputs(x_shape, sigma, percent_to_sigma) if c.previous is not None else None
    s = float(sigma.reshape(-1)[0]) if torch.is_tensor(sigma) else float(sigma)
    if s > float(percent_to_sigma(c.start_percent)) or s < float(percent_to_sigma(c.end_percent)):
        return prev
    return merge(_own_residuals(c, x_shape), prev)


NODES: dict[str, type[Node]] = {
    "ControlNetLoader": ControlNetLoader,
    "ControlNetApply": ControlNetApply,
    "ControlNetApplyAdvanced": ControlNetApplyAdvanced,
}
