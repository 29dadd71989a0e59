"""StageBSampler: Stage C latent + prompt → Stage B latent (the decoder)."""
from __future__ import annotations

import torch

from engine.schema import Input, Node, Output, RunContext
from models.patching import ModelHandle
from models.sampling import guided_eps, sample, stage_b_grid
from nodes import types as T
from runtime.admission import check_run
from runtime.compiled import compiled
from runtime.model_use import item_seeds, module_device, module_dtype, using
from nodes.sampling_inputs import preview_callback, sampler_inputs, seed_input


class StageBSampler(Node):
    """Decode a Stage C latent into a Stage B latent (official: 10 steps, cfg 1.1, shift 1, ddpm)."""

    TITLE = "Stage B Sampler"
    CATEGORY = "stable_cascade/sampling"
    INPUTS = (
        Input("stage_b", T.STAGE_B, tooltip="the Stage B decoder"),
        Input("stage_c_latent", T.STAGE_C_LATENT, tooltip="the Stage C sampler's output"),
        Input("positive", T.CONDITIONING, tooltip="the prompt's conditioning (only its pooled part is used)"),
        Input("negative", T.CONDITIONING,
              tooltip="the negative conditioning's pooled part; the unconditional pass uses a zero Stage C latent"),
        seed_input(),
        *sampler_inputs(steps=10, cfg=1.1, shift=1.0),
    )
    OUTPUTS = (Output("stage_b_latent", T.STAGE_B_LATENT,
                      "4-channel latent at 1/4 of the image size (rounded up; Stage A crops back)"),)

    def run(self, ctx: RunContext, stage_b: ModelHandle, stage_c_latent: T.StageCLatent,
            positive: T.Conditioning, negative: T.Conditioning, seed: int, steps: int, cfg: float,
            sampler: str, scheduler: str, shift: float, cfg_rho: float) -> tuple:
        positive, negative = T.as_conditioning(positive), T.as_conditioning(negative)  # ComfyUI's entries too
        effnet = stage_c_latent.samples
        batch = effnet.shape[0]
        callback = preview_callback(ctx, None)
        check_run(ctx.env, "stage_b", stage_b.module, stage_c_latent.width, stage_c_latent.height, batch, cfg != 1)
        with using(ctx.env, stage_b) as net:
            cfg_net = getattr(net, "config", None)
            patch = int(getattr(cfg_net, "patch_size", 2))
            levels = len(getattr(cfg_net, "c_hidden", (0,) * 4))
            h, w = stage_b_grid(stage_c_latent.width, stage_c_latent.height,
                                multiple=patch, minimum=patch * 2 ** (levels - 1))
            device = module_device(net)
            effnet = effnet.to(device)
            pos, neg = positive.repeat_to(batch), negative.repeat_to(batch)
            # Official uncond for Stage B: pooled of the negative prompt and effnet = zeros (spec §7.2).
            cond = {"effnet": effnet, "clip": pos.pooled.to(device)}
            uncond = {"effnet": torch.zeros_like(effnet), "clip": neg.pooled.to(device)}
            x0 = sample(guided_eps(compiled(ctx.env, net, ctx.warn), cond, uncond, cfg, cfg_rho), (batch, 4, h, w),
                        sampler=sampler, scheduler=scheduler, steps=steps, shift=shift,
                        seeds=item_seeds(seed, batch), device=device, dtype=module_dtype(net), callback=callback)
        return (T.StageBLatent(x0.float().cpu(), stage_c_latent.height, stage_c_latent.width),)
