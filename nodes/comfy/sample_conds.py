"""CONDITIONING entries → network inputs, and ComfyUI's guided denoiser D(x, sigma) for KSampler.

What ComfyUI does between the entry list and the network (model_base.StableCascade_C/_B.extra_conds,
samplers.calc_cond_batch and cfg_function), written over our networks:
  * Stage C gets clip_text (the entry's tensor), clip_text_pooled (``pooled_output``) and clip_img: the
    entry's unCLIP image embeds times their strength, stacked [1, N, 768], or zeros [1, 1, 768];
  * Stage B gets clip = ``pooled_output`` and effnet = the entry's ``stable_cascade_prior``, or zeros
    [1, 16, (4h)//42, (4w)//42] for an entry without one (the negative);
  * each tensor is repeated (or cut) to the latent batch as ComfyUI's repeat_to_batch_size does;
  * several entries (ConditioningCombine) are several predictions, averaged with weight ``strength``
    (default 1), skipped outside their ``start_percent``/``end_percent`` range;
  * CFG is plain: uncond + (cond - uncond) * cfg on the denoised predictions; cfg == 1 skips uncond.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from models.sampling.schedule import comfy_sigma_at, r_from_sigma

CLIP_IMG_DIM = 768  # ComfyUI's zero clip_img width (CLIP ViT-L/14 image embeds)
STAGE_B_PRIOR_RATIO = 42  # ComfyUI sizes the absent prior as (4h)//42; zeros resize to zeros at any size


def repeat_to_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    """ComfyUI's repeat_to_batch_size: cut a larger batch, tile a smaller one, along dim 0."""
    if t.shape[0] > batch:
        return t[:batch]
    if t.shape[0] < batch:
        reps = math.ceil(batch / t.shape[0])
        return t.repeat(reps, *([1] * (t.dim() - 1)))[:batch]
    return t


def _pooled(extras: dict) -> torch.Tensor:
    pooled = extras.get("pooled_output")
    if not torch.is_tensor(pooled):
        raise ValueError("a CONDITIONING entry has no pooled_output; Stable Cascade needs the pooled text "
                         "embedding (encode the prompt with CLIPTextEncode)")
    return pooled.float()


def clip_img_of(extras: dict) -> torch.Tensor:
    """[1, N, 768]: unCLIP image embeds x strength concatenated along dim 1, or zeros [1, 1, 768]."""
    unclip = extras.get("unclip_conditioning")
    if not unclip:
        return torch.zeros(1, 1, CLIP_IMG_DIM)
    embeds = [u["clip_vision_output"].image_embeds.float().unsqueeze(0) * float(u["strength"]) for u in unclip]
    return torch.cat(embeds, dim=1)


def stage_c_inputs(hidden: torch.Tensor, extras: dict) -> dict[str, torch.Tensor]:
    """Stage C keyword inputs of one entry (batch as stored; repeated to the latent batch later)."""
    return {"clip_text": hidden.float(), "clip_text_pooled": _pooled(extras), "clip_img": clip_img_of(extras)}


def stage_b_inputs(hidden: torch.Tensor, extras: dict, latent_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Stage B keyword inputs of one entry: the pooled text and the Stage C prior (zeros when absent)."""
    prior = extras.get("stable_cascade_prior")
    if prior is None:
        h, w = latent_hw
        prior = torch.zeros(1, 16, max(1, 4 * h // STAGE_B_PRIOR_RATIO), max(1, 4 * w // STAGE_B_PRIOR_RATIO))
    return {"clip": _pooled(extras), "effnet": prior.float()}


def control_cnet(control: Any, x_shape: tuple[int, ...], sigma: float,
                 percent_to_sigma: Callable[[float], float]) -> list | None:
    """The adapter to an entry's ``control`` (a ControlNetApplied, built by the ControlNet classes).

    Calls ``control.stage_c_inputs(x_shape, sigma, percent_to_sigma)``: it returns the residual list to pass
    as Stage C's ``cnet=`` input, or None outside its step window. x_shape is the latent batch's shape.
    """
    inputs = getattr(control, "stage_c_inputs", None)
    if inputs is None:
        raise TypeError(f"a CONDITIONING entry carries a control of type {type(control).__name__}, "
                        "which has no stage_c_inputs(); it cannot steer Stage C")
    return inputs(x_shape, sigma, percent_to_sigma)


@dataclass(frozen=True)
class Pred:
    """One entry's prediction: its network inputs, weight, step window (sigmas) and control."""

    inputs: dict[str, torch.Tensor]
    strength: float = 1.0
    sigma_start: float | None = None  # skip while sigma > sigma_start
    sigma_end: float | None = None  # skip while sigma < sigma_end
    control: Any = None

    def active(self, sigma: float) -> bool:
        return not ((self.sigma_start is not None and sigma > self.sigma_start)
                    or (self.sigma_end is not None and sigma < self.sigma_end))


def percent_to_sigma_fn(shift: float) -> Callable[[float], float]:
    """StableCascadeSampling.percent_to_sigma: 0 → 999999999.9, 1 → 0, else sigma(1 - percent)."""

    def percent_to_sigma(percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(comfy_sigma_at(torch.tensor([1.0 - percent], dtype=torch.float64), shift, torch.float32)[0])

    return percent_to_sigma


def preds_of(entries: list[list], stage: str, latent_hw: tuple[int, int], shift: float) -> list[Pred]:
    """The predictions a CONDITIONING entry list asks for on this stage."""
    to_sigma = percent_to_sigma_fn(shift)
    preds = []
    for hidden, extras in entries:
        inputs = stage_c_inputs(hidden, extras) if stage == "stage_c" else stage_b_inputs(hidden, extras, latent_hw)
        start, end = extras.get("start_percent"), extras.get("end_percent")
        preds.append(Pred(inputs, float(extras.get("strength", 1.0)),
                          None if start is None else to_sigma(float(start)),
                          None if end is None else to_sigma(float(end)),
                          extras.get("control") if stage == "stage_c" else None))
    return preds


class ComfyDenoiser:
    """D(x, sigma) = CFG over the entry-averaged EPS denoiser x - sigma * eps(x / sqrt(sigma^2+1), t(sigma)).

    ``net(x, r, **inputs)`` is the Stage C or Stage B network; x [B, C, h, w] float32. Conditioning tensors
    go to the network's device in float32 (the network casts to its own dtype, as ComfyUI's apply_model).
    """

    def __init__(self, net: Callable[..., torch.Tensor], positive: list[Pred], negative: list[Pred], cfg: float,
                 shift: float, device: torch.device):
        self.net, self.positive, self.negative, self.cfg = net, positive, negative, float(cfg)
        self.device = device
        self.percent_to_sigma = percent_to_sigma_fn(shift)

    def _mean(self, preds: list[Pred], x: torch.Tensor, sigma: float) -> torch.Tensor:
        """ComfyUI calc_cond_batch for full-area entries: Σ strength·D_i / (1e-37 + Σ strength)."""
        batch = x.shape[0]
        x_in = x / math.sqrt(sigma * sigma + 1)
        r = torch.full((batch,), float(r_from_sigma(sigma)), dtype=torch.float32, device=x.device)
        total = torch.zeros_like(x)
        count = 1e-37
        for pred in preds:
            if not pred.active(sigma):
                continue
            inputs = {k: repeat_to_batch(v, batch).to(self.device) for k, v in pred.inputs.items()}
            if pred.control is not None:
                cnet = control_cnet(pred.control, tuple(x.shape), sigma, self.percent_to_sigma)
                if cnet is not None:
                    inputs["cnet"] = cnet
            eps = self.net(x_in, r, **inputs).float()
            total = total + (x - sigma * eps) * pred.strength
            count += pred.strength
        return total / count

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        cond = self._mean(self.positive, x, sigma)
        if math.isclose(self.cfg, 1.0):
            return cond
        uncond = self._mean(self.negative, x, sigma)
        return uncond + (cond - uncond) * self.cfg
