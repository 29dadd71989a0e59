"""Sigma lists for the k-diffusion samplers: simple, normal, sgm_uniform, ddim_uniform (ComfyUI's, over
its 10000-entry table), karras, exponential.

Every list is descending, float64, ``steps + 1`` long and ends in 0 (the last step lands on the
clean sample, so the sampler's final value is the last denoised prediction).
"""
from __future__ import annotations

import math

import torch

from .schedule import comfy_sigma_at, comfy_sigma_table, r_from_sigma

SCHEDULERS: tuple[str, ...] = ("simple", "karras", "exponential")  # what our own sampler nodes offer
# ComfyUI's other spacings over the same table, for its KSampler (make_sigmas accepts all of them).
ALL_SCHEDULERS: tuple[str, ...] = (*SCHEDULERS, "normal", "sgm_uniform", "ddim_uniform")


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


def normal_sigmas(table: torch.Tensor, steps: int, shift: float, dtype: torch.dtype, sgm: bool = False) -> torch.Tensor:
    """ComfyUI 'normal' / 'sgm_uniform': evenly spaced in the model's timestep t, mapped back to sigma.

    t = ComfyUI's StableCascadeSampling.timestep (the *unshifted* cosine inverse) of the table's ends,
    and sigma(t) its (shifted) sigma: ComfyUI composes the two as is, so the shift applies on top.
    sgm_uniform takes steps+1 points and drops the last; 'normal' takes `steps` points (its table never
    reaches 0, so ComfyUI appends the 0 in both cases).
    """
    start, end = float(r_from_sigma(float(table[-1]))), float(r_from_sigma(float(table[0])))
    ts = torch.linspace(start, end, steps + 1, dtype=torch.float64)[:-1] if sgm else \
        torch.linspace(start, end, steps, dtype=torch.float64)
    return _with_zero(comfy_sigma_at(ts, shift, dtype))


def ddim_uniform_sigmas(table: torch.Tensor, steps: int) -> torch.Tensor:
    """ComfyUI 'ddim_uniform': every (10000 // steps)-th table entry from index 1 upwards, reversed, then 0."""
    stride = max(len(table) // steps, 1)
    picks = table[1::stride].flip(0)
    return _with_zero(picks.to(torch.float64))


def make_sigmas(scheduler: str, steps: int, shift: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Full-denoise sigma list for ``steps`` steps over the shifted ComfyUI table.

    dtype float32 builds the table as ComfyUI does (in float32; see schedule.comfy_sigma_table); the
    list itself is float64 either way. ddim_uniform's length depends on the stride, not only on steps.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    table = comfy_sigma_table(shift, dtype)
    sigma_min, sigma_max = float(table[0]), float(table[-1])
    if scheduler == "simple":
        return simple_sigmas(table, steps)
    if scheduler in ("normal", "sgm_uniform"):
        return normal_sigmas(table, steps, shift, dtype, sgm=scheduler == "sgm_uniform")
    if scheduler == "ddim_uniform":
        return ddim_uniform_sigmas(table, steps)
    if scheduler == "karras":
        return karras_sigmas(steps, sigma_min, sigma_max)
    if scheduler == "exponential":
        return exponential_sigmas(steps, sigma_min, sigma_max)
    raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(ALL_SCHEDULERS)}")


# A tiny denoise asks for int(steps/denoise) scheduled steps (1e9 at denoise 1e-6): 'simple' builds only
# the tail it keeps; karras/exponential build the list, so it is capped (at most steps/1e6 of the noise
# range is then covered instead of the asked-for sliver: both are indistinguishable from denoise 0).
MAX_SCHEDULE_STEPS = 1_000_000


def denoise_sigmas(scheduler: str, steps: int, shift: float, denoise: float,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """ComfyUI img2img: schedule int(steps/denoise) steps and keep the last ``steps`` of them."""
    if denoise >= 1.0:
        return make_sigmas(scheduler, steps, shift, dtype)
    total = int(steps / denoise) if denoise > 0 else MAX_SCHEDULE_STEPS
    if scheduler == "simple":
        return simple_sigmas(comfy_sigma_table(shift, dtype), max(total, steps), last=steps)
    full = make_sigmas(scheduler, max(steps, min(total, MAX_SCHEDULE_STEPS)), shift, dtype)
    return full[-(steps + 1):]


def sigma_max(shift: float, dtype: torch.dtype = torch.float64) -> float:
    """Largest sigma of the shifted table (t = 1); ComfyUI's test for a full-noise start."""
    return float(comfy_sigma_table(shift, dtype)[-1])
