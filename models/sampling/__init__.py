"""Sampling for Stable Cascade: the official GDF sampler ("ddpm"), k-diffusion samplers, CFG, seeds.

Public API (team contract): ``SAMPLERS``, ``SCHEDULERS``, ``sample(...)``, ``guided_eps(...)`` and
the latent-size helpers. See docs/sampling.md for how "ddpm" relates to diffusers and ComfyUI.
"""
from .guidance import cfg_combine, guided_eps
from .latents import image_size_from_stage_b, stage_b_grid, stage_b_hw, stage_b_shape, stage_c_hw, stage_c_shape
from .noise import ComfyStepNoise, SeededNoise, batch_seeds, comfy_initial_noise
from .run import SAMPLERS, k_sample, official_steps, sample
from .schedulers import SCHEDULERS

__all__ = [
    "SAMPLERS", "SCHEDULERS", "sample", "k_sample", "comfy_initial_noise", "ComfyStepNoise", "guided_eps", "cfg_combine", "SeededNoise", "batch_seeds",
    "official_steps", "stage_c_shape", "stage_b_shape", "stage_c_hw", "stage_b_hw", "stage_b_grid",
    "image_size_from_stage_b",
]
