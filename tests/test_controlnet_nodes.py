"""Our ControlNet nodes: the three hints against hand-computed references, ApplyControlNet's value, and
StageCSampler's control input (absent or strength 0: bit for bit as without; strength 1 differs; start/end)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nodes.control_filters import CannyHint, InpaintingHint, SuperResolutionHint, canny_edges
from nodes.controlnet import ApplyControlNet, LoadControlNet, PreparedControl
from nodes.effnet import EffNetEncode  # noqa: F401  (registry import order as the app)
from nodes.stage_c import StageCSampler
from nodes.text import TextEncode
from tests.nodes_helpers import loaded_nodes


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    env, ctx, te, models = loaded_nodes(tmp_path_factory.mktemp("cnet_nodes"))
    (pos,) = TextEncode().run(ctx, te, "a house")
    (neg,) = TextEncode().run(ctx, te, "")
    return {"env": env, "ctx": ctx, "stage_c": models["stage_c"], "pos": pos, "neg": neg}


def step_image(d: int, size: int = 224) -> torch.Tensor:
    """IMAGE [1, size, size, 3]: grey 100/255 left half, (100 + d)/255 right half."""
    img = torch.full((1, size, size, 3), 100 / 255)
    img[:, :, size // 2:] = (100 + d) / 255
    return img


# -- Canny ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("d, edge", [(60, True), (45, False), (20, False)])
def test_canny_thresholds_are_opencvs(d, edge):
    # OpenCV's 3x3 Sobel across a step of d grey levels gives |Gx| = (1+2+1)·d = 4d: above the high
    # threshold 200 (d = 60 → 240) an edge; between 100 and 200 (d = 45 → 180) only a weak one, so none.
    (hint,) = CannyHint().run(None, step_image(d), 100, 200, 224)
    cols = hint[0, :, :, 0].amax(dim=0).nonzero().flatten().tolist()
    if edge:
        assert cols and set(cols) <= {111, 112} and hint[0, 5:-5, cols[0], 0].eq(1).all()
    else:
        assert cols == []
    assert torch.equal(hint[..., 0], hint[..., 1]) and torch.equal(hint[..., 0], hint[..., 2])


def test_canny_is_found_at_224_and_resized_back_bilinear():
    img = torch.rand(1, 300, 200, 3, generator=torch.Generator().manual_seed(0))
    (hint,) = CannyHint().run(None, img, 100, 200, 224)
    x = F.interpolate(img.movedim(-1, 1), size=(224, 224), mode="bilinear")
    small = canny_edges(x, 100, 200, 0)  # at its own size: no resize
    assert hint.shape == (1, 300, 200, 3)
    assert torch.equal(hint[..., :1].movedim(-1, 1), F.interpolate(small, size=(300, 200), mode="bilinear"))
    # the 8-bit quantisation is numpy's astype (truncation): 0.999/255 below a level stays on the level below
    q = canny_edges(torch.full((1, 3, 8, 8), 0.5), 100, 200, 0)
    assert q.eq(0).all()


def test_canny_refuses_crossed_thresholds():
    with pytest.raises(ValueError, match="low_threshold"):
        CannyHint().run(None, step_image(60), 200, 100, 224)


# -- Inpainting -----------------------------------------------------------------------------------
def test_inpainting_hint_whitens_the_masked_pixels_and_appends_the_mask():
    img = torch.rand(2, 4, 6, 3, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 2, 3)
    mask[0, 0, 0], mask[0, 1, 2] = 0.9, 0.4  # nearest x2: a 2x2 block repainted; 0.4 is below the 0.5 cut
    (hint,) = InpaintingHint().run(None, img, mask)
    assert hint.shape == (2, 4, 6, 4)
    want_mask = torch.zeros(4, 6)
    want_mask[:2, :2] = 1
    for b in range(2):
        assert torch.equal(hint[b, :, :, 3], want_mask)
        assert torch.equal(hint[b, :2, :2, :3], torch.ones(2, 2, 3))
        keep = want_mask == 0
        assert torch.equal(hint[b, :, :, :3][keep], img[b][keep])


# -- Super-resolution -----------------------------------------------------------------------------
def test_super_resolution_hint_is_the_effnet_latent_upsampled_nearest_2x(demo):
    env, ctx = demo["env"], demo["ctx"]
    from nodes.loaders import LoadEffNet

    (effnet,) = LoadEffNet().run(ctx, [f for f in env.weight_files("effnet") if "demo_" in f][0])
    img = torch.rand(1, 96, 64, 3, generator=torch.Generator().manual_seed(2))
    hint, width, height = SuperResolutionHint().run(ctx, effnet, img)
    with torch.no_grad():
        latent = effnet.module(img.movedim(-1, 1)).float()  # [1, 16, 3, 2]
    want = latent.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert (width, height) == (128, 192)
    assert torch.equal(hint.movedim(-1, 1), want)


# -- ApplyControlNet and StageCSampler ------------------------------------------------------------
def load(demo, name):
    (cn,) = LoadControlNet().run(demo["ctx"], f"demo_{name}.safetensors")
    return cn


def sample(demo, control=None, steps=3, **kw):
    args = dict(width=256, height=256, batch_size=2, seed=5, steps=steps, cfg=4.0, sampler="ddpm",
                scheduler="simple", shift=2.0, cfg_rho=0.7)
    args.update(kw)
    extra = {} if control is None else {"control": control}
    (lat,) = StageCSampler().run(demo["ctx"], demo["stage_c"], demo["pos"], demo["neg"], **args, **extra)
    return lat.samples


def canny_control(demo, strength, start=0.0, end=1.0, previous=None):
    (hint,) = CannyHint().run(None, step_image(60, 256), 100, 200, 224)
    return ApplyControlNet().run(demo["ctx"], load(demo, "canny"), hint, strength, start, end, previous)[0]


def test_strength_zero_is_no_controlnet_bit_for_bit_and_strength_one_differs(demo):
    plain = sample(demo)
    assert canny_control(demo, 0.0) == ()
    assert torch.equal(sample(demo, canny_control(demo, 0.0)), plain)
    assert torch.equal(sample(demo, ()), plain)
    assert not torch.equal(sample(demo, canny_control(demo, 1.0)), plain)


def test_the_window_is_the_fraction_of_the_official_steps(demo, monkeypatch):
    seen = []

    def residuals_at(self, r, like, _orig=PreparedControl.residuals_at):
        got = _orig(self, r, like)
        seen.append(got is not None)
        return got

    monkeypatch.setattr(PreparedControl, "residuals_at", residuals_at)
    sample(demo, canny_control(demo, 1.0, 0.25, 0.5), steps=8)
    assert seen == [False, False, True, True, False, False, False, False]  # steps i with 0.25 <= i/8 < 0.5


def test_chained_controls_add_and_a_hint_of_the_wrong_kind_is_named(demo):
    first = canny_control(demo, 0.5)
    both = canny_control(demo, 0.5, previous=first)
    assert len(both) == 2 and both[0] is first[0]
    assert torch.equal(sample(demo, both), sample(demo, canny_control(demo, 1.0)))  # 0.5 r + 0.5 r = 1.0 r
    with pytest.raises(ValueError, match="4-channel hints"):
        ApplyControlNet().run(demo["ctx"], load(demo, "inpainting"), torch.rand(1, 32, 32, 3), 1.0)
