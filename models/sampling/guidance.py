"""Classifier-free guidance as GDF.sample does it: batched cond+uncond, lerp, optional rescale (spec §3.1)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

ModelCall = Callable[..., torch.Tensor]


def cfg_combine(pred_c: torch.Tensor, pred_u: torch.Tensor, cfg: float, cfg_rho: float) -> torch.Tensor:
    """lerp(pred_u, pred_c, cfg), then GDF's rescale: rho * pred * std(c)/std(pred) + (1-rho) * pred.

    pred_c/pred_u: [B, ...]; returns float32 [B, ...]. The stds are unbiased and taken over each
    item's own elements (all dims but the batch). GDF takes them over the whole half-batch, which is
    the same thing at batch 1 (the official inference) but couples the items of a larger batch; per
    item keeps the promise that image i of a batch equals a batch-1 run with seed+i.
    cfg_rho = 0 gives plain lerp (diffusers/ComfyUI).
    """
    pred_c, pred_u = pred_c.float(), pred_u.float()
    pred = torch.lerp(pred_u, pred_c, float(cfg))
    if cfg_rho > 0:
        dims = tuple(range(1, pred.dim()))
        ratio = pred_c.std(dim=dims, keepdim=True) / (pred.std(dim=dims, keepdim=True) + 1e-9)
        pred = cfg_rho * (pred * ratio) + pred * (1 - cfg_rho)
    return pred


def _fit(value: Any, batch: int, name: str) -> Any:
    """Broadcast a batch-1 conditioning tensor to the latent batch; pass non-tensors through."""
    if not torch.is_tensor(value) or value.shape[0] == batch:
        return value
    if value.shape[0] == 1:
        return value.expand(batch, *value.shape[1:])
    raise ValueError(f"conditioning {name!r} has batch {value.shape[0]}, latent batch is {batch}")


def _cat(cond: Any, uncond: Any) -> Any:
    if torch.is_tensor(cond):
        return torch.cat([cond, uncond.to(cond.dtype)], dim=0)
    return cond


def guided_eps(model_call: ModelCall, cond: Mapping[str, Any], uncond: Mapping[str, Any] | None,
               cfg: float, cfg_rho: float = 0.7) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Build ``eps_fn(x, r)`` calling ``model_call(x, r, **cond)``; one batched pass for cond+uncond.

    cfg == 1 (or no uncond) runs the conditional pass only: lerp with weight 1 is the conditional
    prediction and the rescale is then the identity up to the 1e-9 guard.
    """
    if uncond is not None and set(cond) != set(uncond):
        raise ValueError(f"cond and uncond need the same keys: {sorted(cond)} vs {sorted(uncond)}")

    def eps_fn(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        c = {k: _fit(v, batch, k) for k, v in cond.items()}
        if uncond is None or cfg == 1:
            return model_call(x, r, **c).float()
        u = {k: _fit(v, batch, k) for k, v in uncond.items()}
        if any(torch.is_tensor(c[k]) and c[k].shape[1:] != u[k].shape[1:] for k in c):
            # Prompts of different lengths (chunked text: 77·k tokens) cannot share a batch; two passes
            # give exactly what each would alone (ComfyUI instead repeats the shorter text, which
            # changes its attention mass against the pooled/image tokens).
            pred_c, pred_u = model_call(x, r, **c), model_call(x, r, **u)
        else:
            both = {k: _cat(c[k], u[k]) for k in c}
            pred_c, pred_u = model_call(torch.cat([x, x]), torch.cat([r, r]), **both).chunk(2)
        return cfg_combine(pred_c, pred_u, cfg, cfg_rho)

    return eps_fn
