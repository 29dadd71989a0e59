"""Sigma lists for the k-diffusion samplers: simple (ComfyUI), karras, exponential.

Every list is descending, float64, ``steps + 1`` long and ends in 0 (the last step lands on the
clean sample, so the sampler's final value is the last denoised prediction).
"""
from __future__ import annotations

import math

import torch

from .schedule import comfy_sigma_table

SCHEDULERS: tuple[str, ...] = ("simple", "karras", "exponential")


def _with_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def simple_sigmas(table: torch.Tensor, steps: int, last: int | None = None) -> torch.Tensor:
    """ComfyUI 'simple': evenly strided entries of the sigma table, from the top, plus 0.

    With `last`, only the final `last` entries (+ 0) are built: O(last) even for a huge `steps`.
    """
    stride = len(table) / steps  # float stride as in ComfyUI, so int() truncates identically
    first = 0 if last is None else max(0, steps - last)
    picks = [float(table[-(1 + int(i * stride))]) for i in range(first, steps)]
    return _with_zero(torch.tensor(picks, dtype=torch.float64))


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022), eq. 5: sigmas evenly spaced in sigma^(1/rho), plus 0."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _with_zero((hi + ramp * (lo - hi)) ** rho)


def exponential_sigmas(steps: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Sigmas evenly spaced in log(sigma) (k-diffusion get_sigmas_exponential), plus 0."""
    logs = torch.linspace(math.log(sigma_max), math.log(sigma_min), steps, dtype=torch.float64)
    return _with_zero(logs.exp())


def make_sigmas(scheduler: str, steps: int, shift: float) -> torch.Tensor:
    """Full-denoise sigma list for ``steps`` steps over the shifted ComfyUI table."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    table = comfy_sigma_table(shift)
    sigma_min, sigma_max = float(table[0]), float(table[-1])
    if scheduler == "simple":
        return simple_sigmas(table, steps)
    if scheduler == "karras":
        return karras_sigmas(steps, sigma_min, sigma_max)
    if scheduler == "exponential":
        return exponential_sigmas(steps, sigma_min, sigma_max)
    raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")


# A tiny denoise asks for int(steps/denoise) scheduled steps (1e9 at denoise 1e-6): 'simple' builds only
# the tail it keeps; karras/exponential build the list, so it is capped (at most steps/1e6 of the noise
# range is then covered instead of the asked-for sliver: both are indistinguishable from denoise 0).
MAX_SCHEDULE_STEPS = 1_000_000


def denoise_sigmas(scheduler: str, steps: int, shift: float, denoise: float) -> torch.Tensor:
    """ComfyUI img2img: schedule int(steps/denoise) steps and keep the last ``steps`` of them."""
    if denoise >= 1.0:
        return make_sigmas(scheduler, steps, shift)
    total = int(steps / denoise) if denoise > 0 else MAX_SCHEDULE_STEPS
    if scheduler == "simple":
        return simple_sigmas(comfy_sigma_table(shift), max(total, steps), last=steps)
    full = make_sigmas(scheduler, max(steps, min(total, MAX_SCHEDULE_STEPS)), shift)
    return full[-(steps + 1):]


def sigma_max(shift: float) -> float:
    """Largest sigma of the shifted table (t = 1); ComfyUI's test for a full-noise start."""
    return float(comfy_sigma_table(shift)[-1])
