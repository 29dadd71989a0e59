"""THE chain test: EmptyLatentImage → KSampler(C) → StageB_Conditioning → KSampler(B) → VAEDecode against
an independent float64 rendering of ComfyUI's formulas (tests/comfy_sampling_helpers.py).

Tolerance: our run is float32 end to end (networks, sampler state, ComfyUI's float32 sigma table) while the
oracle is float64 throughout, so the two differ by float32 rounding: ~1e-7 relative per operation, amplified
through 4 + 3 steps of random tiny networks, CFG 4 and the Stage A decoder. We allow 1e-5 of the image's
range (measured: ~1.1e-6); every semantic slip we checked (a wrong noise stream, a missing 0.43 or sqrt(1+sigma^2), another sigma)
moves the image by far more than that, as the last assertion shows for the step-noise stream.
"""
from __future__ import annotations

import copy

import pytest
import torch

from nodes.comfy.conditioning import StableCascade_StageB_Conditioning
from nodes.comfy.latent import StableCascade_EmptyLatentImage, VAEDecode
from nodes.comfy.sampling import KSampler
from tests.comfy_sampling_helpers import comfy_env, demo_objects, euler_ancestral64, repeat, simple64

SEED_C, SEED_B = 1234, 98765
STEPS_C, STEPS_B = 4, 3
W = H = 256
BATCH = 2


def _conds(dim: int):
    g = torch.Generator().manual_seed(7)
    pos = [[torch.randn(1, 77, dim, generator=g), {"pooled_output": torch.randn(1, dim, generator=g)}]]
    neg = [[torch.randn(1, 77, dim, generator=g), {"pooled_output": torch.randn(1, dim, generator=g)}]]
    return pos, neg


def _reference(objs, pos, neg, step_seed_offset: int = 1) -> torch.Tensor:
    net_c = copy.deepcopy(objs["stage_c"].handle.module).double()
    net_b = copy.deepcopy(objs["stage_b"].handle.module).double()
    net_a = copy.deepcopy(objs["stage_a"].stage_a.module).double()
    d = lambda t: t.double()  # noqa: E731
    with torch.no_grad():
        # Stage C: zero latent [2,16,256//42,256//42], noise = one draw of the whole batch.
        shape_c = (BATCH, 16, H // 42, W // 42)
        noise = torch.randn(shape_c, generator=torch.Generator().manual_seed(SEED_C)).double()
        sig = simple64(2.0, STEPS_C)
        x = noise * (1 + sig[0] ** 2) ** 0.5
        clip_img = torch.zeros(BATCH, 1, 768, dtype=torch.float64)
        cond = {"clip_text": repeat(d(pos[0][0]), BATCH), "clip_text_pooled": repeat(d(pos[0][1]["pooled_output"]), BATCH),
                "clip_img": clip_img}
        uncond = {"clip_text": repeat(d(neg[0][0]), BATCH), "clip_text_pooled": repeat(d(neg[0][1]["pooled_output"]), BATCH),
                  "clip_img": clip_img}
        gen = torch.Generator().manual_seed(SEED_C + step_seed_offset)
        c_latent = euler_ancestral64(net_c, cond, uncond, 4.0, x, sig, gen)
        # Stage B: zero latent [2,4,64,64] (÷0.43 is still 0); positive effnet = the Stage C latent.
        shape_b = (BATCH, 4, H // 4, W // 4)
        noise = torch.randn(shape_b, generator=torch.Generator().manual_seed(SEED_B)).double()
        sig = simple64(1.0, STEPS_B)
        x = torch.zeros(shape_b, dtype=torch.float64) * (1 / 0.43) + noise * (1 + sig[0] ** 2) ** 0.5
        cond = {"effnet": c_latent.float().double(), "clip": repeat(d(pos[0][1]["pooled_output"]), BATCH)}
        uncond = {"effnet": torch.zeros(BATCH, 16, 4 * 64 // 42, 4 * 64 // 42, dtype=torch.float64),
                  "clip": repeat(d(neg[0][1]["pooled_output"]), BATCH)}
        gen = torch.Generator().manual_seed(SEED_B + step_seed_offset)
        b_latent = euler_ancestral64(net_b, cond, uncond, 1.1, x, sig, gen) * 0.43
        return net_a.decode_raw(b_latent).movedim(1, -1)


@pytest.mark.slow
def test_chain_reproduces_float64_rendering_of_comfyui(tmp_path):
    env, ctx = comfy_env(tmp_path)
    objs = demo_objects(env)
    pos, neg = _conds(objs["stage_c"].handle.module.config.c_clip_text)

    c_empty, b_empty = StableCascade_EmptyLatentImage().run(ctx, W, H, 42, BATCH)
    (c_latent,) = KSampler().run(ctx, objs["stage_c"], SEED_C, STEPS_C, 4.0, "euler_ancestral", "simple",
                                 pos, neg, c_empty, 1.0)
    (pos_b,) = StableCascade_StageB_Conditioning().run(ctx, pos, c_latent)
    (b_latent,) = KSampler().run(ctx, objs["stage_b"], SEED_B, STEPS_B, 1.1, "euler_ancestral", "simple",
                                 pos_b, neg, b_empty, 1.0)
    (image,) = VAEDecode().run(ctx, b_latent, objs["stage_a"])

    ref = _reference(objs, pos, neg)
    assert image.shape == (BATCH, H, W, 3) and image.dtype == torch.float32
    scale = float(ref.abs().max())
    err = float((image.double() - ref).abs().max())
    assert err <= 1e-5 * scale, (err, scale)

    # The oracle can tell streams apart: ComfyUI's CPU step noise is seeded seed+1; seeding it `seed` (the
    # starting noise's stream) moves the image by orders of magnitude more than the tolerance.
    wrong = _reference(objs, pos, neg, step_seed_offset=0)
    assert float((wrong - ref).abs().max()) > 100 * 1e-5 * scale
