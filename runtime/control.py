"""The hint → residuals path every ControlNet user shares (our ApplyControlNet and ComfyUI's classes).

A ControlNet turns a prepared hint [B, c_in, H, W] into a list indexed by Stage C ResBlock ordinal (spec §6);
`residuals` runs it once, resident through the model manager like every network (budget, eviction), and
scales the outputs by the strength, as the official code multiplies `cnet` by its `cnet_multiplier`.
`merge` sums the lists of chained ControlNets.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from models.patching import ModelHandle
from runtime.model_use import using

Residuals = list  # list[torch.Tensor | None], indexed by Stage C ResBlock ordinal


def residuals(env: Any, handle: ModelHandle, hint: torch.Tensor, strength: float) -> Residuals:
    """The ControlNet's outputs for `hint` [B, c_in, H, W] (float, any device) times `strength`.

    Outputs are in the ControlNet's dtype on its device. Raises ValueError when the hint's channels do not
    fit the ControlNet (ControlNet.forward names both).
    """
    with using(env, handle) as net, torch.no_grad():
        out = net(hint)
    return [None if t is None else t * strength for t in out]


def _like(p: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """p on a's device/dtype and, when the hints had other sizes, resized to a's grid as Stage C resizes
    residuals (bilinear, align_corners): exact for same-size hints, one extra resampling otherwise."""
    p = p.to(a.device, a.dtype)
    if p.shape[-2:] != a.shape[-2:]:
        p = F.interpolate(p.float(), size=tuple(a.shape[-2:]), mode="bilinear", align_corners=True).to(a.dtype)
    return p


def merge(own: Residuals, prev: Residuals | None) -> Residuals:
    """Elementwise sum of two residual lists (None counts as nothing; the longer list's tail is kept).

    Entries of different grids (chained hints of different sizes) are summed on own's grid."""
    if prev is None:
        return list(own)
    n = max(len(own), len(prev))
    out: Residuals = []
    for i in range(n):
        a = own[i] if i < len(own) else None
        p = prev[i] if i < len(prev) else None
        out.append(p if a is None else a if p is None else a + _like(p, a))
    return out
