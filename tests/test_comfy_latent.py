"""Latent, VAE and conditioning classes against ComfyUI's formulas and hand-computed cases."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nodes.comfy.conditioning import ConditioningCombine, ConditioningZeroOut, StableCascade_StageB_Conditioning
from nodes.comfy.latent import (StableCascade_EmptyLatentImage, StableCascade_StageC_VAEEncode,
                                StableCascade_SuperResolutionControlnet, VAEDecode, VAEEncode)
from nodes.comfy.sampling import KSampler, KSamplerAdvanced
from tests.comfy_sampling_helpers import comfy_env, demo_objects


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    env, ctx = comfy_env(tmp_path_factory.mktemp("comfy_latent"))
    return env, ctx, demo_objects(env)


def test_empty_latents_floor_the_grid(setup):
    _, ctx, _ = setup
    c, b = StableCascade_EmptyLatentImage().run(ctx, 1000, 776, 42, 3)
    assert c["samples"].shape == (3, 16, 776 // 42, 1000 // 42) == (3, 16, 18, 23)
    assert b["samples"].shape == (3, 4, 194, 250) and not b["samples"].any()
    assert "batch_size" in StableCascade_EmptyLatentImage.check(None, dict(width=16384, height=16384,
                                                                          compression=4, batch_size=4096))


def test_conditioning_classes_copy_and_never_mutate():
    pos = [[torch.ones(1, 77, 8), {"pooled_output": torch.ones(1, 8), "keep": 1}]]
    neg = [[torch.full((1, 77, 8), 2.0), {"pooled_output": torch.full((1, 8), 2.0)}]]
    (zero,) = ConditioningZeroOut().run(None, pos)
    assert not zero[0][0].any() and not zero[0][1]["pooled_output"].any() and zero[0][1]["keep"] == 1
    assert pos[0][0].eq(1).all() and pos[0][1]["pooled_output"].eq(1).all()
    (both,) = ConditioningCombine().run(None, pos, neg)
    assert [e[0][0, 0, 0].item() for e in both] == [1.0, 2.0]
    prior = torch.randn(2, 16, 3, 3)
    (withp,) = StableCascade_StageB_Conditioning().run(None, both, {"samples": prior})
    assert all(e[1]["stable_cascade_prior"] is prior for e in withp)
    assert "stable_cascade_prior" not in pos[0][1]
    with pytest.raises(ValueError, match="16-channel"):
        StableCascade_StageB_Conditioning().run(None, pos, {"samples": torch.zeros(1, 4, 8, 8)})


def test_stage_c_vae_encode_centre_crops_bicubic_to_cells_times_32(setup):
    _, ctx, objs = setup
    image = torch.rand(1, 100, 200, 3, generator=torch.Generator().manual_seed(1))
    c, b = StableCascade_StageC_VAEEncode().run(ctx, image, objs["coder"], 42)
    # 200//42*32 = 128 wide, 100//42*32 = 64 high: aspect 2 = source aspect, so no crop.
    resized = F.interpolate(image.movedim(-1, 1), size=(64, 128), mode="bicubic")
    with torch.no_grad():
        expected = objs["coder"].effnet.module(resized)
    assert torch.allclose(c["samples"], expected, atol=1e-6)
    assert b["samples"].shape == (1, 4, 100 // 8 * 2, 200 // 8 * 2)
    # compression 60: a 96x32 (3:1) target from a 2:1 source keeps the middle rows:
    # y = round((100 - 100 * (2/3)) / 2) = 17, so rows 17..82 (100 - 2*17 = 66 rows).
    c2, _ = StableCascade_StageC_VAEEncode().run(ctx, image, objs["coder"], 60)
    crop = F.interpolate(image.movedim(-1, 1)[..., 17:83, :], size=(32, 96), mode="bicubic")
    with torch.no_grad():
        assert torch.allclose(c2["samples"], objs["coder"].effnet.module(crop), atol=1e-6)


def test_vae_encode_crops_to_the_multiple_and_stage_a_decode_is_raw(setup):
    _, ctx, objs = setup
    image = torch.rand(1, 10, 13, 4, generator=torch.Generator().manual_seed(2))
    (lat,) = VAEEncode().run(ctx, image, objs["stage_a"])
    net = objs["stage_a"].stage_a.module
    # 10 -> 8 rows from offset (10 % 4)//2 = 1; 13 -> 12 columns from offset 0; alpha dropped.
    with torch.no_grad():
        expected = net.encode_raw(image[:, 1:9, 0:12, :3].movedim(-1, 1))
    assert torch.allclose(lat["samples"], expected, atol=1e-6)
    z = torch.randn(1, 4, 3, 3, generator=torch.Generator().manual_seed(3)) * 5
    (img,) = VAEDecode().run(ctx, {"samples": z}, objs["stage_a"])
    with torch.no_grad():
        raw = net.decode_raw(z).movedim(1, -1)
    assert torch.allclose(img, raw, atol=1e-6)
    assert float(img.max()) > 1 or float(img.min()) < 0  # ComfyUI does not clamp Stage A's output


def test_previewer_decode_and_superresolution_outputs(setup):
    _, ctx, objs = setup
    z = torch.randn(1, 16, 2, 2, generator=torch.Generator().manual_seed(4))
    (img,) = VAEDecode().run(ctx, {"samples": z}, objs["coder"])
    assert img.shape == (1, 16, 16, 3) and 0 <= float(img.min()) and float(img.max()) <= 1
    image = torch.rand(2, 64, 96, 3, generator=torch.Generator().manual_seed(5))
    feats, c, b = StableCascade_SuperResolutionControlnet().run(ctx, image, objs["coder"])
    assert feats.shape == (2, 2, 3, 16)
    assert c["samples"].shape == (2, 16, 4, 6) and b["samples"].shape == (2, 4, 32, 48)
    with pytest.raises(ValueError, match="needs a stage_c_coder"):
        StableCascade_SuperResolutionControlnet().run(ctx, image, objs["stage_a"])


def test_ksampler_refuses_masks_and_wrong_latents_and_windows_return_the_input(setup):
    _, ctx, objs = setup
    cond = [[torch.randn(1, 77, 32), {"pooled_output": torch.randn(1, 32)}]]
    lat = {"samples": torch.zeros(1, 16, 2, 2), "noise_mask": torch.ones(1, 2, 2)}
    with pytest.raises(ValueError, match="noise_mask"):
        KSampler().run(ctx, objs["stage_c"], 0, 2, 1.0, "euler", "simple", cond, cond, lat, 1.0)
    with pytest.raises(ValueError, match="channels"):
        KSampler().run(ctx, objs["stage_c"], 0, 2, 1.0, "euler", "simple", cond, cond,
                       {"samples": torch.ones(1, 4, 8, 8)}, 1.0)
    start = {"samples": torch.randn(1, 16, 2, 2), "batch_index": [0]}
    (out,) = KSamplerAdvanced().run(ctx, objs["stage_c"], "enable", 0, 3, 1.0, "euler", "simple", cond, cond,
                                    start, 3, 10000, "disable")
    assert torch.equal(out["samples"], start["samples"]) and out["batch_index"] == [0]
    (out,) = KSampler().run(ctx, objs["stage_c"], 0, 3, 1.0, "euler", "simple", cond, cond, start, 0.0)
    assert torch.equal(out["samples"], start["samples"])
