"""``sample``: one entry point that picks the official GDF loop or a k-diffusion sampler."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .k_samplers import K_SAMPLERS, EpsDenoiser
from .noise import SeededNoise
from .official import official_img2img_init, sample_ddpm
from .schedule import logsnr_from_sigma, official_logsnrs_f32
from .schedulers import SCHEDULERS, denoise_sigmas, sigma_max

SAMPLERS: tuple[str, ...] = ("ddpm", *K_SAMPLERS)

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]


def official_steps(steps: int, denoise: float) -> int:
    """Steps the official img2img runs: int(steps * strength), at least 1."""
    return max(1, int(steps * denoise)) if denoise < 1 else steps


def _validate(shape: Sequence[int], sampler: str, scheduler: str, steps: int, denoise: float,
              init: torch.Tensor | None, seeds: Sequence[int]) -> None:
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be in [0, 1], got {denoise}")
    if len(seeds) != shape[0]:
        raise ValueError(f"need one seed per batch item: {len(seeds)} seeds for batch {shape[0]}")
    if denoise < 1 and init is None:
        raise ValueError("denoise < 1 needs an init latent")
    if init is not None and (tuple(init.shape[1:]) != tuple(shape[1:]) or init.shape[0] not in (1, shape[0])):
        raise ValueError(f"init latent {tuple(init.shape)} does not fit shape {tuple(shape)}")


def sample(eps_fn: EpsFn, shape: Sequence[int], *, sampler: str = "ddpm", scheduler: str = "simple",
           steps: int, shift: float, denoise: float = 1.0, init: torch.Tensor | None = None,
           seeds: Sequence[int], device: torch.device | str, dtype: torch.dtype,
           callback: StepCallback | None = None) -> torch.Tensor:
    """Sample a latent batch and return the final x0 prediction (float32, on ``device``).

    ``eps_fn(x_vp, r)`` gets x_vp cast to ``dtype`` and r as float32 [B]; the sampler state stays
    float32 (like the official bf16 autocast, where only the network runs in low precision).
    """
    shape = tuple(int(s) for s in shape)
    _validate(shape, sampler, scheduler, steps, denoise, init, seeds)
    device = torch.device(device)
    if init is not None:
        init = init.to(device=device, dtype=torch.float32).expand(shape)
    if denoise == 0:
        return init.clone()

    def net(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return eps_fn(x.to(dtype), r).float()

    noise = SeededNoise(seeds, shape[1:], device)
    if sampler == "ddpm":
        return _run_official(net, shape, scheduler, steps, shift, denoise, init, noise, callback)
    return _run_k(net, shape, sampler, scheduler, steps, shift, denoise, init, noise, callback)


def _run_official(net: EpsFn, shape, scheduler: str, steps: int, shift: float, denoise: float,
                  init: torch.Tensor | None, noise: SeededNoise, callback: StepCallback | None) -> torch.Tensor:
    """'simple' = GDF's linspace-in-t grid; karras/exponential = the k-sigma list run with DDPM updates."""
    if scheduler == "simple":
        logsnrs = official_logsnrs_f32(official_steps(steps, denoise), shift, t_start=denoise)
        x = noise() if init is None else official_img2img_init(init, noise(), denoise)
        return sample_ddpm(net, x, logsnrs, generator=noise, callback=callback)
    sigmas = denoise_sigmas(scheduler, steps, shift, denoise)
    x_k = _k_start(sigmas, shift, init, noise())
    x = x_k / math.sqrt(float(sigmas[0]) ** 2 + 1)
    return sample_ddpm(net, x, logsnr_from_sigma(sigmas), generator=noise, callback=callback)


def _k_start(sigmas: torch.Tensor, shift: float, init: torch.Tensor | None, n: torch.Tensor) -> torch.Tensor:
    """ComfyUI noise_scaling: init + n*sigma, or n*sqrt(1+sigma^2) (unit-variance x_vp) from full noise."""
    s0, top = float(sigmas[0]), sigma_max(shift)
    full = math.isclose(s0, top, rel_tol=1e-5) or s0 > top
    scaled = n * (math.sqrt(1 + s0 * s0) if full else s0)
    return scaled if init is None else init + scaled


def _run_k(net: EpsFn, shape, sampler: str, scheduler: str, steps: int, shift: float, denoise: float,
           init: torch.Tensor | None, noise: SeededNoise, callback: StepCallback | None) -> torch.Tensor:
    """ComfyUI semantics: sigma list truncated for denoise < 1, x = init + noise * sigma_start."""
    sigmas = denoise_sigmas(scheduler, steps, shift, denoise)
    x = _k_start(sigmas, shift, init, noise())
    return K_SAMPLERS[sampler](EpsDenoiser(net), x, sigmas, generator=noise, callback=callback)


def k_sample(denoiser: Callable[[torch.Tensor, float], torch.Tensor], sigmas: torch.Tensor, *, sampler: str,
             noise: torch.Tensor, latent: torch.Tensor, step_noise: Callable[[], torch.Tensor],
             sigma_top: float, callback: StepCallback | None = None) -> torch.Tensor:
    """ComfyUI's KSAMPLER.sample over a given sigma list (for callers that own the sigmas and the noise).

    x starts as latent + noise * sqrt(1 + s0^2) when s0 is the schedule's top (``sigma_top``, within
    1e-5 relative, or above it), else latent + noise * s0 (EPS noise_scaling); then the k-sampler
    runs with ``denoiser(x, sigma) -> x0`` and ``step_noise()`` for its per-step draws. noise and latent
    are float32 [B, ...] on the target device; returns the sampler's final x (float32).
    """
    if sampler not in K_SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(K_SAMPLERS)}")
    s0 = float(sigmas[0])
    full = math.isclose(s0, sigma_top, rel_tol=1e-5) or s0 > sigma_top
    x = latent + noise * (math.sqrt(1 + s0 * s0) if full else s0)
    return K_SAMPLERS[sampler](denoiser, x, sigmas, generator=step_noise, callback=callback)
