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

from models.clip_vision import image_tokens
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
    # ComfyUI makes a batch of B images B tokens of one item ([1, B, 768]); ours is per item (nodes/vision.py).
    return image_tokens([(u["clip_vision_output"].image_embeds.unsqueeze(0), u["strength"]) for u in unclip])


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


def share_controls(positive: list[list], negative: list[list]) -> list[list]:
    """ComfyUI's apply_empty_x_to_equal_area for ControlNets: when no negative entry has a control, the
    positive controls marked ``control_apply_to_uncond`` (ControlNetApply) go to the negative entries, the
    i-th to entry i mod n (copies). Returns the negative entries to sample with."""
    if any(extras.get("control") is not None for _, extras in negative):
        return negative
    shared = [e["control"] for _, e in positive if e.get("control") is not None and e.get("control_apply_to_uncond")]
    if not shared or not negative:
        return negative
    out = [[h, dict(e)] for h, e in negative]
    for i, control in enumerate(shared):
        out[i % len(out)][1]["control"] = control
    return out


MAX_TEXT_REPEAT = 4  # ComfyUI batches prompts of different lengths when lcm/shorter <= 4 (CONDCrossAttn)


def _batch_key(inputs: dict[str, torch.Tensor], control: Any) -> tuple:
    """Predictions with equal keys run in one network call (ComfyUI's can_concat: same shapes except the
    text length, same control object)."""
    return (tuple((k, tuple(v.shape[2:]) if k == "clip_text" else tuple(v.shape[1:])) for k, v in sorted(inputs.items())),
            id(control) if control is not None else None)


def _text_fits(a: torch.Tensor, b: torch.Tensor) -> bool:
    n, m = a.shape[1], b.shape[1]
    return n == m or math.lcm(n, m) // min(n, m) <= MAX_TEXT_REPEAT


def _concat(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One batch of several predictions' inputs; texts of different lengths repeated to their lcm
    (ComfyUI's CONDCrossAttn.concat), other tensors concatenated along the batch."""
    out = {}
    for key in parts[0]:
        values = [p[key] for p in parts]
        if key == "clip_text":
            length = math.lcm(*(v.shape[1] for v in values))
            values = [v.repeat(1, length // v.shape[1], 1) for v in values]
        out[key] = torch.cat(values)
    return out


class ComfyDenoiser:
    """D(x, sigma) = CFG over the entry-averaged EPS denoiser x - sigma * eps(x / sqrt(sigma^2+1), t(sigma)).

    ``net(x, r, **inputs)`` is the Stage C or Stage B network; x [B, C, h, w] float32. Conditioning tensors
    go to the network's device in float32 (the network casts to its own dtype, as ComfyUI's apply_model).
    As ComfyUI's calc_cond_batch, the active predictions of cond and uncond that can share a call (same
    shapes and control; texts within 4x of each other's length) run as one batch.
    """

    def __init__(self, net: Callable[..., torch.Tensor], positive: list[Pred], negative: list[Pred], cfg: float,
                 shift: float, device: torch.device):
        self.net, self.positive, self.negative, self.cfg = net, positive, negative, float(cfg)
        self.device = device
        self.percent_to_sigma = percent_to_sigma_fn(shift)

    def _eps_batches(self, preds: list[Pred], x: torch.Tensor, sigma: float) -> list[torch.Tensor]:
        """eps of each prediction (in order), computed in as few network calls as ComfyUI would."""
        batch = x.shape[0]
        x_in = x / math.sqrt(sigma * sigma + 1)
        r = torch.full((batch,), float(r_from_sigma(sigma)), dtype=torch.float32, device=x.device)
        inputs = [{k: repeat_to_batch(v, batch).to(self.device) for k, v in p.inputs.items()} for p in preds]
        groups: list[list[int]] = []
        for i, pred in enumerate(preds):
            key = _batch_key(inputs[i], pred.control)
            for group in groups:
                first = group[0]
                if (_batch_key(inputs[first], preds[first].control) == key
                        and all(_text_fits(inputs[j]["clip_text"], inputs[i]["clip_text"])
                                for j in group if "clip_text" in inputs[i])):
                    group.append(i)
                    break
            else:
                groups.append([i])
        eps: list[torch.Tensor | None] = [None] * len(preds)
        for group in groups:
            n = len(group)
            call = _concat([inputs[i] for i in group])
            control = preds[group[0]].control
            if control is not None:
                cnet = control_cnet(control, (batch * n, *x.shape[1:]), sigma, self.percent_to_sigma)
                if cnet is not None:
                    call["cnet"] = cnet
            out = self.net(x_in.repeat(n, 1, 1, 1), r.repeat(n), **call).float()
            for i, chunk in zip(group, out.chunk(n)):
                eps[i] = chunk
        return eps

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """ComfyUI calc_cond_batch for full-area entries: Σ strength·D_i / (1e-37 + Σ strength), then CFG."""
        cond = [p for p in self.positive if p.active(sigma)]
        uncond = [] if math.isclose(self.cfg, 1.0) else [p for p in self.negative if p.active(sigma)]
        eps = self._eps_batches(cond + uncond, x, sigma)
        means = []
        for preds, part in ((cond, eps[:len(cond)]), (uncond, eps[len(cond):])):
            total, count = torch.zeros_like(x), 1e-37
            for pred, e in zip(preds, part):
                total = total + (x - sigma * e) * pred.strength
                count += pred.strength
            means.append(total / count)
        if math.isclose(self.cfg, 1.0):
            return means[0]
        return means[1] + (means[0] - means[1]) * self.cfg
