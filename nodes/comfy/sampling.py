"""KSampler and KSamplerAdvanced over the Stable Cascade sigmas, with ComfyUI's noise stream.

ComfyUI's common_ksampler, numerically: the starting noise is ONE randn draw of the whole latent from a
CPU generator seeded ``seed`` (models.sampling.comfy_initial_noise), ancestral steps draw from the
generator ComfyUI derives from the same seed (ComfyStepNoise), the sigmas come from ComfyUI's float32
table with the MODEL's shift, and the Stage B latent is divided by 0.43 on the way in and multiplied back
on the way out (the SC_B latent format). Our own sampler nodes keep their per-item seeds; this path is
only for ComfyUI's classes.
"""
from __future__ import annotations

import torch

from engine.schema import COMBO, FLOAT, INT, Input, Node, Output, RunContext
from models.sampling import ComfyStepNoise, comfy_initial_noise, k_sample
from models.sampling.k_samplers import K_SAMPLERS
from models.sampling.latents import STAGE_C_COMPRESSION
from models.sampling.schedulers import ALL_SCHEDULERS, denoise_sigmas, sigma_max
from nodes.comfy import types as C
from nodes.comfy.sample_conds import ComfyDenoiser, preds_of, share_controls
from nodes.sampling_inputs import SEED_MAX, preview_callback
from runtime.admission import check_run
from runtime.model_use import module_device, using

# ComfyUI's names, in ComfyUI's list order, for what models/sampling runs exactly as ComfyUI does
# (dpmpp_2m_sde: see docs/comfy_mapping.md, KSampler). Its "ddpm" is a different sampler from our
# official GDF "ddpm", so it is not offered here.
SAMPLER_NAMES = tuple(n for n in ("euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde", "lcm")
                      if n in K_SAMPLERS)
SCHEDULER_NAMES = tuple(n for n in ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform")
                        if n in ALL_SCHEDULERS)
CHANNELS = {"stage_c": 16, "stage_b": 4}
SC_B_SCALE = 1.0 / C.STAGE_B_LATENT_SCALE  # ComfyUI's SC_B scale_factor: process_in multiplies, out divides


def comfy_sigmas(shift: float, scheduler: str, steps: int, denoise: float) -> torch.Tensor:
    """KSampler.set_steps: the full list above denoise 0.9999, none at or below 0, else the tail of
    int(steps/denoise) steps; over ComfyUI's float32 table. float64 holding ComfyUI's float32 values."""
    if denoise > 0.9999:
        return denoise_sigmas(scheduler, steps, shift, 1.0, torch.float32)
    if denoise <= 0.0:
        return torch.zeros(0, dtype=torch.float64)
    return denoise_sigmas(scheduler, steps, shift, denoise, torch.float32)


def slice_sigmas(sigmas: torch.Tensor, start_step: int | None, last_step: int | None,
                 force_full_denoise: bool) -> torch.Tensor | None:
    """KSampler.sample's step window; None when no step is left (the latent comes back unchanged)."""
    if last_step is not None and last_step < len(sigmas) - 1:
        sigmas = sigmas[:last_step + 1].clone()
        if force_full_denoise:
            sigmas[-1] = 0
    if start_step is not None:
        if start_step >= len(sigmas) - 1:
            return None
        sigmas = sigmas[start_step:]
    return sigmas if len(sigmas) > 1 else None


def _latent_samples(latent: dict, model: C.Model) -> torch.Tensor:
    """The LATENT's samples fitted to the model (ComfyUI's fix_empty_latent_channels), or a clear error."""
    if latent.get("noise_mask") is not None:
        raise ValueError("this LATENT has a noise_mask (inpainting); KSampler here does not support masked "
                         "sampling for Stable Cascade yet, so it refuses rather than ignore the mask")
    samples = latent["samples"].float()
    want = CHANNELS[model.stage]
    if samples.shape[1] != want:
        if torch.count_nonzero(samples) == 0:  # an empty latent of the other stage: ComfyUI resizes it
            samples = torch.zeros(samples.shape[0], want, *samples.shape[2:])
            _check_grid(samples, model)
            return samples
        raise ValueError(f"latent_image has {samples.shape[1]} channels but the {model.stage} MODEL samples "
                         f"{want}-channel latents (is the latent from the other stage?)")
    _check_grid(samples, model)
    return samples


def _check_grid(samples: torch.Tensor, model: C.Model) -> None:
    """Refuse a latent grid the network cannot run, naming it, before any work: Stage B's PixelUnshuffle
    needs sides that are multiples of its patch size, and its stride-2 levels need at least
    patch x 2^(levels-1) cells (ComfyUI fails inside the network with a torch message instead).
    Stage C (patch 1, resampling between levels) runs at any size."""
    cfg = getattr(model.handle.module, "config", None)
    if model.stage != "stage_b" or cfg is None:
        return
    patch = int(getattr(cfg, "patch_size", 1))
    least = patch * 2 ** (len(getattr(cfg, "c_hidden", (0,))) - 1)
    h, w = samples.shape[-2:]
    if h < least or w < least or h % patch or w % patch:
        raise ValueError(
            f"latent_image is {h}x{w} cells; the stage_b MODEL needs sides that are multiples of {patch} and at "
            f"least {least} (images of at least {least * 4} px whose width and height are multiples of 8). "
            "Stage B samples the stage_b output of StableCascade_EmptyLatentImage; a Stage C latent or a "
            "Stage B MODEL in the Stage C chain gives this")


def common_ksampler(ctx: RunContext, model: C.Model, seed: int, steps: int, cfg: float, sampler_name: str,
                    scheduler: str, positive, negative, latent_image, denoise: float = 1.0,
                    disable_noise: bool = False, start_step: int | None = None, last_step: int | None = None,
                    force_full_denoise: bool = False) -> tuple[dict]:
    """ComfyUI's common_ksampler over our core; returns the LATENT (a copy with new samples)."""
    if not isinstance(model, C.Model):
        raise TypeError(f"model: expected a MODEL (Stage C or Stage B), got {type(model).__name__}")
    latent = C.latent(latent_image, "latent_image")
    pos, neg = C.entries(positive), C.entries(negative)
    neg = share_controls(pos, neg)  # ControlNetApply steers the negative too, as in ComfyUI
    samples = _latent_samples(latent, model)
    shape = tuple(samples.shape)
    sigmas = slice_sigmas(comfy_sigmas(model.shift, scheduler, steps, denoise), start_step, last_step,
                          force_full_denoise)
    if sigmas is None:
        return ({**latent, "samples": samples},)
    noise = torch.zeros(shape) if disable_noise else comfy_initial_noise(shape, seed, latent.get("batch_index"))
    b, _, h, w = shape
    pixels = (int(w * STAGE_C_COMPRESSION), int(h * STAGE_C_COMPRESSION)) if model.stage == "stage_c" else (w * 4, h * 4)
    check_run(ctx.env, model.stage, model.handle.module, pixels[0], pixels[1], b, not _cfg_one(cfg))
    latent_in = samples * SC_B_SCALE if model.stage == "stage_b" else samples
    callback = preview_callback(ctx, None)
    with using(ctx.env, model.handle) as net:
        device = module_device(net)
        denoiser = ComfyDenoiser(net, preds_of(pos, model.stage, (h, w), model.shift),
                                 preds_of(neg, model.stage, (h, w), model.shift), cfg, model.shift, device)
        x = k_sample(denoiser, sigmas, sampler=sampler_name, noise=noise.to(device), latent=latent_in.to(device),
                     step_noise=ComfyStepNoise(seed, shape, device), sigma_top=sigma_max(model.shift, torch.float32),
                     callback=callback)
    out = x.float().cpu()
    return ({**latent, "samples": out / SC_B_SCALE if model.stage == "stage_b" else out},)


def _cfg_one(cfg: float) -> bool:
    return abs(float(cfg) - 1.0) <= 1e-9


def _common_inputs() -> tuple[Input, ...]:
    return (
        Input("steps", INT, default=20, min=1, max=10000, tooltip="the number of steps of the schedule"),
        Input("cfg", FLOAT, default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,  # ComfyUI's: 4.25 stays
              tooltip="classifier-free guidance scale (1.0 skips the negative pass)"),
        Input("sampler_name", COMBO, default=SAMPLER_NAMES[0], choices=SAMPLER_NAMES,
              tooltip="the k-diffusion sampler (ComfyUI's names; the ones this app runs as ComfyUI does)"),
        Input("scheduler", COMBO, default=SCHEDULER_NAMES[0], choices=SCHEDULER_NAMES,
              tooltip="how the sigmas are spaced over the model's schedule (ComfyUI's names)"),
        Input("positive", C.CONDITIONING, tooltip="the conditioning to steer towards"),
        Input("negative", C.CONDITIONING, tooltip="the conditioning to steer away from"),
        Input("latent_image", C.LATENT, tooltip="the latent to denoise (empty for text-to-image)"),
    )


class KSampler(Node):
    """ComfyUI's KSampler: denoise a LATENT with a Stable Cascade MODEL (Stage C or Stage B)."""

    TITLE = "KSampler"
    CATEGORY = "sampling"
    INPUTS = (
        Input("model", C.MODEL, tooltip="the Stage C or Stage B model"),
        Input("seed", INT, default=0, min=0, max=SEED_MAX, seed=True,
              tooltip="noise seed: one noise tensor for the whole latent batch, as ComfyUI draws it"),
        *_common_inputs(),
        Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
              tooltip="how much of the schedule to run (below 1: the tail of a longer schedule)"),
    )
    OUTPUTS = (Output("LATENT", C.LATENT, "the denoised latent"),)

    def run(self, ctx: RunContext, model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
            latent_image, denoise=1.0) -> tuple:
        return common_ksampler(ctx, model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                               latent_image, denoise=denoise)


class KSamplerAdvanced(Node):
    """ComfyUI's KSamplerAdvanced: a window of the schedule, optional noise, optional leftover noise."""

    TITLE = "KSampler (Advanced)"
    CATEGORY = "sampling"
    INPUTS = (
        Input("model", C.MODEL, tooltip="the Stage C or Stage B model"),
        Input("add_noise", COMBO, default="enable", choices=("enable", "disable"),
              tooltip="disable: start from the latent as is (e.g. the leftover noise of an earlier window)"),
        Input("noise_seed", INT, default=0, min=0, max=SEED_MAX, seed=True, tooltip="noise seed"),
        *_common_inputs(),
        Input("start_at_step", INT, default=0, min=0, max=10000, tooltip="first step of the window"),
        Input("end_at_step", INT, default=10000, min=0, max=10000, tooltip="step the window stops at"),
        Input("return_with_leftover_noise", COMBO, default="disable", choices=("disable", "enable"),
              tooltip="enable: stop at the window's sigma instead of denoising fully"),
    )
    OUTPUTS = (Output("LATENT", C.LATENT, "the denoised latent"),)

    def run(self, ctx: RunContext, model, add_noise, noise_seed, steps, cfg, sampler_name, scheduler, positive,
            negative, latent_image, start_at_step, end_at_step, return_with_leftover_noise) -> tuple:
        return common_ksampler(ctx, model, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative,
                               latent_image, denoise=1.0, disable_noise=add_noise == "disable",
                               start_step=start_at_step, last_step=end_at_step,
                               force_full_denoise=return_with_leftover_noise != "enable")


NODES: dict[str, type[Node]] = {"KSampler": KSampler, "KSamplerAdvanced": KSamplerAdvanced}
