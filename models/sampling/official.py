"""The official Stable Cascade sampler: GDF's DDPMSampler (DDIM with eta = 1) in VP space (spec §3.1)."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .noise import SeededNoise
from .schedule import gdf_logsnr, noise_cond, vp_scalers

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]


def ddpm_step(x0: torch.Tensor, eps: torch.Tensor, a: float, b: float, a_next: float, b_next: float,
              noise: torch.Tensor) -> torch.Tensor:
    """GDF DDIMSampler.step with eta=1: x' = a'x0 + sqrt(b'^2 - s^2) eps + s z, s = (b'/b) sqrt(1 - a^2/a'^2)."""
    sigma_tau = math.sqrt(b_next ** 2 / b ** 2) * math.sqrt(max(0.0, 1 - a ** 2 / a_next ** 2))
    keep = math.sqrt(max(0.0, b_next ** 2 - sigma_tau ** 2))
    return a_next * x0 + keep * eps + sigma_tau * noise


def sample_ddpm(eps_fn: EpsFn, x: torch.Tensor, logsnrs: torch.Tensor, *, generator: SeededNoise,
                callback: StepCallback | None = None) -> torch.Tensor:
    """Run GDF.sample's loop over a logSNR grid from VP sample ``x``; returns the LAST step's x0.

    ``eps_fn(x_vp, r)`` with r a float32 [B] tensor of the noise condition (from the shifted logSNR).
    Fresh noise is drawn on every step, the last included (GDF does; it keeps the noise stream
    identical even though the last update is discarded in favour of x0).
    """
    a_all, b_all = vp_scalers(logsnrs)
    r_all = noise_cond(logsnrs)
    total = len(logsnrs) - 1
    x0 = x
    for i in range(total):
        a, b = float(a_all[i]), float(b_all[i])
        r = torch.full((x.shape[0],), float(r_all[i]), dtype=torch.float32, device=x.device)
        eps = eps_fn(x, r)
        x0 = (x - b * eps) / a
        x = ddpm_step(x0, eps, a, b, float(a_all[i + 1]), float(b_all[i + 1]), generator())
        if callback is not None:
            callback(i + 1, total, x0)
    return x0


def official_img2img_init(init: torch.Tensor, noise: torch.Tensor, t_start: float) -> torch.Tensor:
    """gdf.diffuse(init, t_start) as the official app calls it: noised with the SHIFT-1 logSNR.

    The app then samples with shift 2 from t_start; the mismatch is an official quirk (spec §7.13)
    reproduced on purpose by our "ddpm" sampler.
    """
    a, b = vp_scalers(gdf_logsnr(t_start, shift=1.0))
    return float(a) * init + float(b) * noise
