"""Our tiny networks vs diffusers' StableCascadeUNet / PaellaVQModel with the same random weights (fp32)."""
import dataclasses

import pytest
import torch

from models.convert_keys import stage_a_original_to_diffusers, unet_config_to_diffusers, unet_original_to_diffusers
from models.stage_a import STAGE_A_PRESETS, StageA
from models.stage_b import STAGE_B_PRESETS, StageB
from models.stage_c import STAGE_C_PRESETS, StageC
from tests.networks_helpers import randomize_, rel_err

diffusers = pytest.importorskip("diffusers")
from diffusers.models.unets.unet_stable_cascade import StableCascadeUNet  # noqa: E402
from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel  # noqa: E402

TOL = 1e-5


def twin_unet(ours: torch.nn.Module) -> StableCascadeUNet:
    theirs = StableCascadeUNet(**unet_config_to_diffusers(ours.config)).eval()
    theirs.load_state_dict(unet_original_to_diffusers(ours.state_dict()), strict=True)
    return theirs


STAGE_C_CONFIGS = {
    "tiny": STAGE_C_PRESETS["tiny"],
    # Exercises the enabled bilinear resampler (switch_level) and down repeat mappers.
    "switch": dataclasses.replace(STAGE_C_PRESETS["tiny"], switch_level=(True,), block_repeat=((2, 1), (1, 2)),
                                  blocks=((1, 2), (2, 1))),
}


@pytest.mark.parametrize("which", sorted(STAGE_C_CONFIGS))
def test_stage_c_matches_diffusers(which):
    ours = randomize_(StageC(STAGE_C_CONFIGS[which]), seed=1).eval()
    theirs = twin_unet(ours)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 16, 8, 8, generator=g)
    r = torch.rand(2, generator=g)
    txt, pooled = torch.randn(2, 77, 32, generator=g), torch.randn(2, 1, 32, generator=g)
    img = torch.randn(2, 1, 768, generator=g)
    with torch.no_grad():
        a = ours(x, r, txt, pooled, img)
        b = theirs(x, r, clip_text_pooled=pooled, clip_text=txt, clip_img=img).sample
    assert a.shape == b.shape == x.shape
    assert b.abs().mean() > 1e-3
    assert rel_err(a, b) <= TOL


def test_stage_b_matches_diffusers():
    ours = randomize_(StageB(STAGE_B_PRESETS["tiny"]), seed=3).eval()
    theirs = twin_unet(ours)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 32, 32, generator=g)
    r = torch.rand(2, generator=g)
    effnet, clip = torch.randn(2, 16, 6, 6, generator=g), torch.randn(2, 1, 32, generator=g)
    with torch.no_grad():
        a = ours(x, r, effnet, clip)
        b = theirs(x, r, clip_text_pooled=clip, effnet=effnet).sample
    assert a.shape == b.shape == x.shape
    assert b.abs().mean() > 1e-3
    assert rel_err(a, b) <= TOL


def test_stage_a_matches_paella_raw_paths():
    """diffusers' encode/decode have no scale; ours divide/multiply by 0.43 (diffusers' config says 0.3764)."""
    cfg = STAGE_A_PRESETS["tiny"]
    ours = randomize_(StageA(cfg), seed=5).eval()
    theirs = PaellaVQModel(levels=cfg.levels, bottleneck_blocks=cfg.bottleneck_blocks, embed_dim=cfg.c_hidden,
                           latent_channels=cfg.c_latent, num_vq_embeddings=cfg.codebook_size).eval()
    theirs.load_state_dict(stage_a_original_to_diffusers(ours.state_dict()), strict=True)
    img = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        z_theirs = theirs.encode(img).latents
        latent = ours.encode(img)
        assert rel_err(latent * 0.43, z_theirs) <= TOL
        assert rel_err(ours.encode_raw(img), z_theirs) <= TOL
        dec_theirs = theirs.decode(z_theirs, force_not_quantize=True).sample
        assert rel_err(ours.decode_raw(z_theirs), dec_theirs) <= TOL
        assert torch.allclose(ours.decode(latent), dec_theirs.clamp(0, 1), atol=1e-5)
        q_theirs = theirs.decode(z_theirs, force_not_quantize=False).sample
        assert rel_err(ours.decode_raw(ours.quantize(latent) * 0.43), q_theirs) <= TOL


def test_bf16_error_no_worse_than_diffusers():
    """In bf16 our fused/folded kernels stay as close to the fp32 result as diffusers' bf16 run does."""
    cfg = dataclasses.replace(STAGE_B_PRESETS["tiny"], c_hidden=(32, 64, 128, 128), nhead=(-1, -1, 2, 2),
                              blocks=((1, 2, 2, 1), (1, 2, 2, 1)))
    ours = randomize_(StageB(cfg), seed=8).eval()
    theirs = twin_unet(ours)
    g = torch.Generator().manual_seed(9)
    x, r = torch.randn(2, 4, 64, 64, generator=g), torch.zeros(2)  # r=0: diffusers embeds r in the weights' dtype
    effnet, clip = torch.randn(2, 16, 12, 12, generator=g), torch.randn(2, 1, 32, generator=g)
    with torch.no_grad():
        ref = theirs(x, r, clip_text_pooled=clip, effnet=effnet).sample
        ours.bfloat16()
        theirs.bfloat16()
        xb, eb, cb, rb = x.bfloat16(), effnet.bfloat16(), clip.bfloat16(), r.bfloat16()
        err_ours = rel_err(ours(xb, rb, eb, cb), ref)
        err_theirs = rel_err(theirs(xb, rb, clip_text_pooled=cb, effnet=eb).sample, ref)
    assert err_ours < 0.05
    assert err_ours <= 1.25 * err_theirs
