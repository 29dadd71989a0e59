"""The official Stable Cascade sampler: GDF's DDPMSampler (DDIM with eta = 1) in VP space (spec §3.1).

Everything the official loop computes is computed here the way GDF does: in float32 tensors, in its op
order (schedule.*_f32), so a run reproduces the official numbers to float32 rounding of the network.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .noise import SeededNoise
from .schedule import gdf_logsnr_f32, noise_cond_f32, vp_scalers_f32

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]


def ddpm_step(x0: torch.Tensor, eps: torch.Tensor, a, b, a_next, b_next, noise: torch.Tensor) -> torch.Tensor:
    """GDF DDIMSampler.step with eta=1: x' = a'x0 + sqrt(b'^2 - s^2) eps + s z, s = (b'/b) sqrt(1 - a^2/a'^2).

    a, b, a_next, b_next: floats or tensors broadcastable to x0 (GDF passes float32 [B,1,1,1]); the ops
    run in GDF's order. The clamps to 0 only guard rounding below zero (GDF would return NaN there).
    """
    a, b, a_next, b_next = (torch.as_tensor(v, dtype=torch.float64 if isinstance(v, float) else None)
                            for v in (a, b, a_next, b_next))
    sigma_tau = (b_next ** 2 / b ** 2).sqrt() * (1 - a ** 2 / a_next ** 2).clamp(min=0).sqrt()
    keep = (b_next ** 2 - sigma_tau ** 2).clamp(min=0).sqrt()
    return a_next * x0 + keep * eps + sigma_tau * noise


def _per_item(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar of the grid as GDF holds it: float32, one per batch item, viewed [B,1,...,1]."""
    return v.reshape(1).expand(x.shape[0]).reshape(-1, *[1] * (x.dim() - 1)).to(x.device)


def sample_ddpm(eps_fn: EpsFn, x: torch.Tensor, logsnrs: torch.Tensor, *, generator: SeededNoise,
                callback: StepCallback | None = None) -> torch.Tensor:
    """Run GDF.sample's loop over a logSNR grid from VP sample ``x``; returns the LAST step's x0.

    ``eps_fn(x_vp, r)`` with r a float32 [B] tensor of the noise condition (from the shifted logSNR).
    The grid is used in float32 (GDF's dtype; pass official_logsnrs_f32 for the official grid), and
    r, the scalers and the update are computed from it in float32 as GDF does.
    Fresh noise is drawn on every step, the last included (GDF does; it keeps the noise stream
    identical even though the last update is discarded in favour of x0).
    """
    logsnrs = logsnrs.float()
    a_all, b_all = vp_scalers_f32(logsnrs)
    r_all = noise_cond_f32(logsnrs)
    total = len(logsnrs) - 1
    x0 = x
    for i in range(total):
        a, b = _per_item(a_all[i], x), _per_item(b_all[i], x)
        a_next, b_next = _per_item(a_all[i + 1], x), _per_item(b_all[i + 1], x)
        r = r_all[i].reshape(1).expand(x.shape[0]).to(x.device)
        eps = eps_fn(x, r)
        x0 = (x - eps * b) / a  # EpsilonTarget.x0
        x = ddpm_step(x0, eps, a, b, a_next, b_next, generator())
        if callback is not None:
            callback(i + 1, total, x0)
    return x0


def official_img2img_init(init: torch.Tensor, noise: torch.Tensor, t_start: float) -> torch.Tensor:
    """gdf.diffuse(init, t_start) as the official app calls it: noised with the SHIFT-1 logSNR.

    The app then samples with shift 2 from t_start; the mismatch is an official quirk (spec §7.13)
    reproduced on purpose by our "ddpm" sampler.
    """
    a, b = vp_scalers_f32(gdf_logsnr_f32([float(t_start)], shift=1.0))
    return init * a.to(init.device) + noise * b.to(init.device)  # GDF.diffuse: x0 * a + epsilon * b
