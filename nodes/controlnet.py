"""Our ControlNet nodes: LoadControlNet, ApplyControlNet, and the CONTROL value StageCSampler takes.

Official semantics (Stability's inference code and app): the ControlNet runs once on the prepared hint at
the hint's own size, its outputs times the strength (`cnet_multiplier`) go to Stage C's `cnet` input, and
the same residuals steer the conditional AND the unconditional pass (`unconditions['cnet'] = cnet`).
start/end (ours; the official code has no window) are fractions of the diffusion time t, 1 (noise) → 0:
a ControlNet is active at a step whose t satisfies start <= 1 - t < end. With the official "ddpm"/"simple"
sampler at denoise 1, t_i = 1 - i/steps, so that is the fraction of the steps (steps i with
start <= i/steps < end). Other samplers are matched through the noise condition r the network sees.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from engine.schema import COMBO, FLOAT, Input, Node, Output, RunContext
from models.controlnet import ControlNet
from models.patching import ModelHandle
from models.sampling.schedule import gdf_logsnr, noise_cond
from runtime import control as core
from nodes.loaders import _Loader
from runtime.env import dtype_choices

KIND = "controlnet"  # the weights subfolder, which is also ComfyUI's controlnet folder
CONTROL_NET = "CONTROL_NET"  # same socket type as ComfyUI's ControlNetLoader: either loader feeds either apply
CONTROL = "CONTROL"
R_TOLERANCE = 1e-5  # relative: r at a window edge is computed twice (float32 vs float64) and may differ by ulps


@dataclass(frozen=True, eq=False)
class AppliedControl:
    """One ControlNet applied: its handle, hint [B, c_in, H, W] float32, strength and t window."""

    control: ModelHandle
    hint: torch.Tensor
    strength: float
    start: float
    end: float


Control = tuple  # CONTROL: a tuple of AppliedControl, earliest first; () means none (StageCSampler as without)


def hint_bchw(image: Any, c_in: int) -> torch.Tensor:
    """An IMAGE [B, H, W, C] as the ControlNet's hint [B, c_in, H, W] float32.

    A 1-channel ControlNet takes a grey image, or of RGB the first channel when all are equal (a Canny image)
    else their mean; RGBA goes to an RGB ControlNet without its alpha. Raises ValueError when the channels do
    not fit (a hint made for another kind of ControlNet) or the image is too small for the ControlNet.
    """
    if not torch.is_tensor(image) or image.dim() != 4:
        raise ValueError(f"image: expected an IMAGE [B,H,W,C], got {tuple(getattr(image, 'shape', ())) or type(image).__name__}")
    s = image.float().movedim(-1, 1)
    # Only a grey or RGB image becomes one channel: an inpainting (4) or super-resolution (16) hint averaged
    # into edges would run silently with the wrong ControlNet.
    if c_in == 1 and s.shape[1] == 3:
        s = s[:, :1] if torch.equal(s[:, :1].expand_as(s), s) else s.mean(dim=1, keepdim=True)
    elif c_in == 3 and s.shape[1] == 4:
        s = s[:, :3]
    if s.shape[1] != c_in:
        need = {1: "an edge image (Canny Hint)", 4: "RGB + mask (Inpainting Hint)",
                16: "an EfficientNet latent (Super-Resolution Hint)"}.get(c_in, "RGB")
        raise ValueError(f"image: this ControlNet takes {c_in}-channel hints ({need}), got {s.shape[1]} channels")
    return s.contiguous()


class LoadControlNet(_Loader):
    """Load a Stable Cascade ControlNet (canny, inpainting, super-resolution) from the controlnet folder.

    Through the model manager, keyed (file, kind, dtype) like ComfyUI's ControlNetLoader: one resident copy."""

    TITLE = "Load ControlNet"
    KIND = KIND
    INPUTS = (
        Input("file", COMBO, default="canny.safetensors", choices=lambda env: env.weight_files(KIND),
              tooltip="a ControlNet file from the weights folder's controlnet/ subfolder (ComfyUI's controlnet "
                      "folder): canny, inpainting or super_resolution.safetensors"),
        Input("dtype", COMBO, default="auto", choices=dtype_choices(KIND),
              tooltip="auto: float32 (the ControlNet is small; its residuals are cast to Stage C's dtype)"),
    )
    OUTPUTS = (Output("control_net", CONTROL_NET, "the ControlNet"),)


class ApplyControlNet(Node):
    """Apply a ControlNet with a prepared hint (Canny / Inpainting / Super-Resolution Hint) to StageCSampler."""

    TITLE = "Apply ControlNet"
    CATEGORY = "stable_cascade/controlnet"
    INPUTS = (
        Input("control_net", CONTROL_NET, tooltip="the ControlNet (Load ControlNet)"),
        Input("image", "IMAGE", tooltip="the prepared hint, at the output image's size"),
        Input("strength", FLOAT, default=1.0, min=0.0, max=10.0, step=0.01,
              tooltip="multiplies the residuals (official cnet_multiplier); 0 is exactly no ControlNet"),
        Input("start", FLOAT, default=0.0, min=0.0, max=1.0, step=0.001,
              tooltip="first fraction of the schedule (1 - t) at which the ControlNet acts"),
        Input("end", FLOAT, default=1.0, min=0.0, max=1.0, step=0.001,
              tooltip="fraction of the schedule (1 - t) from which it stops acting"),
        Input("control", CONTROL, optional=True, tooltip="an earlier Apply ControlNet to add to (chaining)"),
    )
    OUTPUTS = (Output("control", CONTROL, "for StageCSampler's control input"),)

    def run(self, ctx: RunContext, control_net: Any, image: Any, strength: float, start: float = 0.0,
            end: float = 1.0, control: Control | None = None) -> tuple:
        if not isinstance(control_net, ModelHandle) or not isinstance(control_net.module, ControlNet):
            raise TypeError(f"control_net: expected a CONTROL_NET, got {type(control_net).__name__}")
        previous = tuple(control or ())
        if strength == 0 or end <= start:  # no effect at all: exactly the run without it
            return (previous,)
        hint = hint_bchw(image, control_net.module.config.c_in)
        try:  # here, naming this node, rather than when Stage C Sampler runs the ControlNet
            control_net.module.config.check_hint(tuple(hint.shape))
        except ValueError as e:
            raise ValueError(f"image: {e}") from None
        return (previous + (AppliedControl(control_net, hint, float(strength), float(start), float(end)),),)


def r_at(fraction: float, shift: float) -> float:
    """The noise condition r at t = 1 - fraction of the shifted GDF schedule (float64)."""
    return float(noise_cond(gdf_logsnr(1.0 - fraction, shift)))


def _active(c: AppliedControl, r: float, shift: float) -> bool:
    """start <= 1 - t < end, decided on r (monotone in t); the open ends are exact."""
    if c.start > 0 and r > r_at(c.start, shift) * (1 + R_TOLERANCE):
        return False
    return c.end >= 1 or r > r_at(c.end, shift) * (1 + R_TOLERANCE)


def _fit_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    """Residuals of hint batch 1 broadcast; hint batch b tiles to a batch of k*b (cond and uncond halves)."""
    if t.shape[0] in (1, batch):
        return t
    return t.repeat(batch // t.shape[0], *([1] * (t.dim() - 1)))


class PreparedControl:
    """The controls of one sampler run, their ControlNets already run: wraps Stage C's call.

    Built before Stage C is made resident, so a ControlNet and Stage C need not fit in memory together.
    Raises ValueError when a hint's batch is neither 1 nor `batch`, or its channels do not fit its ControlNet.
    """

    def __init__(self, env: Any, control: Control, shift: float, batch: int):
        for c in control:
            if c.hint.shape[0] not in (1, batch):
                raise ValueError(f"control: a hint has batch {c.hint.shape[0]}; the latent batch is {batch} "
                                 "(give one hint or one per image)")
        self.control, self.shift = tuple(control), float(shift)
        self.own = [core.residuals(env, c.control, c.hint, c.strength) for c in self.control]
        self.sums: dict[tuple, list] = {}

    def residuals_at(self, r: float, like: torch.Tensor) -> list | None:
        """The summed residuals of the controls active at noise condition r (on like's device and dtype),
        or None when none is active."""
        active = tuple(i for i, c in enumerate(self.control) if _active(c, r, self.shift))
        if not active:
            return None
        key = (active, like.device, like.dtype)
        if key not in self.sums:
            total = None
            for i in active:
                total = core.merge(self.own[i], total)
            self.sums[key] = [None if t is None else t.to(device=like.device, dtype=like.dtype) for t in total]
        return self.sums[key]

    def wrap(self, model_call: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        """model_call(x, r, **kw) with `cnet=` the active residuals; untouched at steps where none is active.

        The same residuals go to every item of x: the conditional and the unconditional half alike
        (the official `unconditions['cnet'] = cnet`), a hint batch b tiled over x's batch k*b.
        """
        def call(x: torch.Tensor, r: torch.Tensor, **kw: Any) -> torch.Tensor:
            r0 = float(r.reshape(-1)[0]) if torch.is_tensor(r) else float(r)
            cnet = self.residuals_at(r0, x)
            if cnet is None:
                return model_call(x, r, **kw)
            return model_call(x, r, cnet=[None if t is None else _fit_batch(t, x.shape[0]) for t in cnet], **kw)

        return call
