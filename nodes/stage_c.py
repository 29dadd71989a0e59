"""StageCSampler: text conditioning → Stage C latent (the prior), with live Previewer previews."""
from __future__ import annotations

import torch

from engine.schema import Input, Node, Output, RunContext
from models.patching import ModelHandle
from models.sampling import guided_eps, sample, stage_c_hw
from nodes import types as T
from nodes.controlnet import CONTROL, PreparedControl
from runtime.admission import check_run
from runtime.compiled import compiled
from runtime.model_use import item_seeds, module_device, module_dtype, using
from nodes.sampling_inputs import env_preview_size, preview_callback, sampler_inputs, seed_input
from nodes.vision import IMAGE_PROMPT, clip_img_pair

CLIP_IMG_DIM = 768  # CLIP ViT-L/14 image embedding width; zeros unless doing image variation


class StageCSampler(Node):
    """Sample a Stage C latent from the prompt (official: 20 steps, cfg 4, shift 2, ddpm, cfg_rho 0.7)."""

    TITLE = "Stage C Sampler"
    CATEGORY = "stable_cascade/sampling"
    INPUTS = (
        Input("stage_c", T.STAGE_C, tooltip="the Stage C prior"),
        Input("positive", T.CONDITIONING, tooltip="the prompt's conditioning"),
        Input("negative", T.CONDITIONING, tooltip="the negative prompt's conditioning (officially the empty prompt)"),
        Input("width", T.INT, default=1024, min=128, max=8192, step=8, tooltip="output image width in pixels"),
        Input("height", T.INT, default=1024, min=128, max=8192, step=8, tooltip="output image height in pixels"),
        Input("batch_size", T.INT, default=1, min=1, max=64, tooltip="images per run"),
        seed_input(),
        *sampler_inputs(steps=20, cfg=4.0, shift=2.0),
        Input("denoise", T.FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
              tooltip="how much of the schedule to run; below 1 needs an init latent (image-to-image)"),
        Input("init", T.STAGE_C_LATENT, optional=True,
              tooltip="optional start latent (EffNet Encode of an image); its size overrides width/height"),
        Input("previewer", T.PREVIEWER, optional=True, tooltip="optional Previewer for live previews"),
        Input("control", CONTROL, optional=True, tooltip="optional ControlNets (Apply ControlNet)"),
        Input("image_prompt", IMAGE_PROMPT, optional=True,
              tooltip="optional image embeddings (Image Prompt) for image variation; the negative gets none"),
    )
    OUTPUTS = (Output("stage_c_latent", T.STAGE_C_LATENT, "the Stage C latent (x0 of the last step)"),)

    def run(self, ctx: RunContext, stage_c: ModelHandle, positive: T.Conditioning, negative: T.Conditioning,
            width: int, height: int, batch_size: int, seed: int, steps: int, cfg: float, sampler: str,
            scheduler: str, shift: float, cfg_rho: float, denoise: float = 1.0,
            init: T.StageCLatent | None = None, previewer: ModelHandle | None = None, control: tuple = (),
            image_prompt: tuple | None = None) -> tuple:
        # ComfyUI's CLIPTextEncode feeds this socket too: one plain entry reads as our Conditioning.
        positive, negative = T.as_conditioning(positive), T.as_conditioning(negative)
        init_samples = None
        if init is not None:
            init_samples, height, width = init.samples, init.height, init.width
            if init_samples.shape[0] == 1 and batch_size > 1:
                init_samples = init_samples.expand(batch_size, -1, -1, -1)
            batch_size = init_samples.shape[0]
        elif denoise < 1.0:
            ctx.warn("denoise < 1 without an init latent starts from noise anyway; running the full schedule")
            denoise = 1.0
        h, w = stage_c_hw(width, height) if init_samples is None else tuple(init_samples.shape[-2:])
        # An init image decides the size and batch here, after validation sized the widgets.
        text_tokens = max(positive.hidden.shape[1], negative.hidden.shape[1])  # chunked prompts: 77·k
        check_run(ctx.env, "stage_c", stage_c.module, width, height, batch_size, cfg != 1, text_tokens)
        callback = preview_callback(ctx, previewer, env_preview_size(ctx.env))
        prepared = PreparedControl(ctx.env, control, shift, batch_size) if control else None
        with using(ctx.env, stage_c) as net:
            device = module_device(net)
            pos, neg = positive.repeat_to(batch_size), negative.repeat_to(batch_size)
            clip_img = torch.zeros(1, 1, getattr(getattr(net, "config", None), "c_clip_img", CLIP_IMG_DIM),
                                   device=device)
            clip_img_neg = clip_img
            if image_prompt:  # None or () (every strength 0): text only, exactly as without the input
                clip_img, clip_img_neg = clip_img_pair(image_prompt, batch_size, clip_img.shape[-1], device)
            cond = {"clip_text": pos.hidden.to(device), "clip_text_pooled": pos.pooled.to(device),
                    "clip_img": clip_img}
            uncond = {"clip_text": neg.hidden.to(device), "clip_text_pooled": neg.pooled.to(device),
                      "clip_img": clip_img_neg}
            net_call = compiled(ctx.env, net, ctx.warn)  # the module itself unless compile is on
            model = prepared.wrap(net_call) if prepared else net_call
            x0 = sample(guided_eps(model, cond, uncond, cfg, cfg_rho), (batch_size, 16, h, w),
                        sampler=sampler, scheduler=scheduler, steps=steps, shift=shift, denoise=denoise,
                        init=None if init_samples is None else init_samples.to(device),
                        seeds=item_seeds(seed, batch_size), device=device, dtype=module_dtype(net),
                        callback=callback)
        return (T.StageCLatent(x0.float().cpu(), height, width),)
