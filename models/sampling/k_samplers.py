"""k-diffusion-style samplers over a denoiser D(x, sigma), x = x_vp / a (spec §3.4).

Written from the papers and k-diffusion's published algorithms (not ComfyUI's GPL code). Every
sampler has the same signature ``sample_<name>(model, x, sigmas, *, generator, callback)``:
``model(x, sigma) -> denoised`` with sigma a Python float, ``sigmas`` a descending float64 list
ending in 0, ``generator()`` the next standard-normal draw shaped like x, and
``callback(step, total, denoised)`` after each step (it may raise to cancel). They return the
final x; with the last sigma 0 that is the last denoised prediction.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import torch

from .schedule import r_from_sigma

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]
Noise = Callable[[], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]
Sigmas = torch.Tensor | Sequence[float]


class EpsDenoiser:
    """ComfyUI's EPS wrapper for Stable Cascade: D(x, s) = x - s * eps(x / sqrt(s^2+1), r(s))."""

    def __init__(self, eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.eps_fn = eps_fn

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        r = torch.full((x.shape[0],), float(r_from_sigma(sigma)), dtype=torch.float32, device=x.device)
        eps = self.eps_fn(x / math.sqrt(sigma * sigma + 1), r)
        return x - sigma * eps


def _report(callback: StepCallback | None, i: int, total: int, denoised: torch.Tensor) -> None:
    if callback is not None:
        callback(i + 1, total, denoised)


def _floats(sigmas: Sigmas) -> list[float]:
    return [float(s) for s in sigmas]


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """Split the step to sigma_next into a deterministic part (down) and fresh noise (up), eta=1 = DDPM-like."""
    if sigma_next == 0 or eta == 0:
        return sigma_next, 0.0
    up = min(sigma_next, eta * math.sqrt(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2))
    return math.sqrt(sigma_next ** 2 - up ** 2), up


def sample_euler(model: Denoiser, x: torch.Tensor, sigmas: Sigmas, *, generator: Noise | None = None,
                 callback: StepCallback | None = None) -> torch.Tensor:
    """Euler steps on the probability-flow ODE dx/dsigma = (x - D)/sigma (Karras et al. 2022, Alg. 2, no churn)."""
    s = _floats(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i])
        x = x + (x - denoised) / s[i] * (s[i + 1] - s[i])
        _report(callback, i, len(s) - 1, denoised)
    return x


def sample_euler_ancestral(model: Denoiser, x: torch.Tensor, sigmas: Sigmas, *, generator: Noise,
                           callback: StepCallback | None = None, eta: float = 1.0) -> torch.Tensor:
    """Ancestral Euler (k-diffusion): Euler to sigma_down, then add sigma_up fresh noise."""
    s = _floats(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i])
        down, up = ancestral_step(s[i], s[i + 1], eta)
        x = x + (x - denoised) / s[i] * (down - s[i])
        if s[i + 1] > 0:
            x = x + generator() * up
        _report(callback, i, len(s) - 1, denoised)
    return x


def sample_heun(model: Denoiser, x: torch.Tensor, sigmas: Sigmas, *, generator: Noise | None = None,
                callback: StepCallback | None = None) -> torch.Tensor:
    """Heun's 2nd-order method (Karras et al. 2022, Alg. 2, no churn); Euler on the final step to 0."""
    s = _floats(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i])
        d = (x - denoised) / s[i]
        dt = s[i + 1] - s[i]
        if s[i + 1] == 0:
            x = x + d * dt
        else:
            x_pred = x + d * dt
            d_next = (x_pred - model(x_pred, s[i + 1])) / s[i + 1]
            x = x + (d + d_next) / 2 * dt
        _report(callback, i, len(s) - 1, denoised)
    return x


def _second_order(h: float, h_last: float | None) -> bool:
    """Whether the multistep correction is defined: repeated sigmas (h = 0, e.g. a schedule clamped flat
    by an extreme shift, or a tiny denoise) make the step an identity, where the ratio would divide by 0."""
    return bool(h) and bool(h_last)


def sample_dpmpp_2m(model: Denoiser, x: torch.Tensor, sigmas: Sigmas, *, generator: Noise | None = None,
                    callback: StepCallback | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) in lambda = -log(sigma); first and last steps are 1st order."""
    s = _floats(sigmas)
    old_denoised, h_last = None, None
    for i in range(len(s) - 1):
        denoised = model(x, s[i])
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i]) - math.log(s[i + 1])
            d = denoised
            if old_denoised is not None and _second_order(h, h_last):
                ratio = h_last / h
                d = (1 + 1 / (2 * ratio)) * denoised - (1 / (2 * ratio)) * old_denoised
            x = (s[i + 1] / s[i]) * x - math.expm1(-h) * d
            h_last = h
        old_denoised = denoised
        _report(callback, i, len(s) - 1, denoised)
    return x


def sample_dpmpp_2m_sde(model: Denoiser, x: torch.Tensor, sigmas: Sigmas, *, generator: Noise,
                        callback: StepCallback | None = None, eta: float = 1.0) -> torch.Tensor:
    """DPM-Solver++(2M) SDE, midpoint variant (k-diffusion), with Gaussian per-step noise.

    k-diffusion/ComfyUI draw this noise from a Brownian tree; independent Gaussians per step have
    the same distribution, so results match in law, not bit for bit.
    """
    s = _floats(sigmas)
    old_denoised, h_last = None, None
    for i in range(len(s) - 1):
        denoised = model(x, s[i])
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i]) - math.log(s[i + 1])
            eta_h = eta * h
            x = (s[i + 1] / s[i]) * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * denoised
            if old_denoised is not None and _second_order(h, h_last):
                ratio = h_last / h
                x = x - 0.5 * math.expm1(-h - eta_h) * (1 / ratio) * (denoised - old_denoised)
            if eta:
                x = x + generator() * (s[i + 1] * math.sqrt(-math.expm1(-2 * eta_h)))
            h_last = h
        old_denoised = denoised
        _report(callback, i, len(s) - 1, denoised)
    return x


def sample_lcm(model: Denoiser, x: torch.Tensor, sigmas: Sigmas, *, generator: Noise,
               callback: StepCallback | None = None) -> torch.Tensor:
    """Latent Consistency Model sampling (Luo et al. 2023): jump to D(x), re-noise to the next sigma."""
    s = _floats(sigmas)
    for i in range(len(s) - 1):
        denoised = model(x, s[i])
        x = denoised
        if s[i + 1] > 0:
            x = x + generator() * s[i + 1]
        _report(callback, i, len(s) - 1, denoised)
    return x


K_SAMPLERS: Mapping[str, Callable[..., torch.Tensor]] = MappingProxyType({
    "euler": sample_euler,
    "euler_ancestral": sample_euler_ancestral,
    "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "lcm": sample_lcm,
})
