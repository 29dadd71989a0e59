"""ControlNetApplied.stage_c_inputs (KSampler's side of the interface): ComfyUI's hint preparation, percent
range gating with a float64 percent_to_sigma written from the published formulas, strength, chaining,
caching, and the residuals' effect on Stage C."""
from __future__ import annotations

import contextlib
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from models.controlnet import CONTROLNET_PRESETS, ControlNet
from models.demo import randomise
from models.patching import ModelHandle
from nodes.comfy.types import ControlNetApplied
from tests.test_controlnet import resblocks_in_run_order, stage_c_inputs, tiny_stage_c

ENV = SimpleNamespace(models=SimpleNamespace(use=lambda m: contextlib.nullcontext(m)))


def percent_to_sigma(p: float, shift: float = 2.0, s: float = 0.008) -> float:
    """ComfyUI's StableCascadeSampling.percent_to_sigma in float64 (spec §3.4)."""
    if p <= 0:
        return 999999999.9
    if p >= 1:
        return 0.0
    t = 1.0 - p
    min_var = math.cos(s / (1 + s) * math.pi / 2) ** 2
    a = math.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / min_var
    a = 1 / (1 + math.exp(-(math.log(a / (1 - a)) + 2 * math.log(1 / shift))))
    a = min(max(a, 1e-4), 0.9999)
    return math.sqrt((1 - a) / a)


def net(preset="tiny_canny", seed=0) -> ControlNet:
    m = ControlNet(CONTROLNET_PRESETS[preset]).eval().requires_grad_(False)
    randomise(m, torch.Generator().manual_seed(seed))
    return m


def applied(module, hint, **kw) -> ControlNetApplied:
    return ControlNetApplied(ModelHandle(module), ENV, hint, **kw)


def test_hint_is_centre_cropped_resized_and_averaged_as_comfyui():
    m = net()
    image = torch.rand(1, 3, 60, 100, generator=torch.Generator().manual_seed(1))  # [B,C,H,W]
    c = applied(m, image, strength=0.5)
    got = c.stage_c_inputs((1, 16, 3, 2), 1.0, percent_to_sigma)
    # by hand: target 3*32=96 x 2*32=64 (multiples of 8); aspect 100/60 > 64/96, so crop x by
    # round((100 - 100*(0.6667/1.6667))/2) = 30 columns each side, then bilinear, then the RGB mean.
    hint = F.interpolate(image[..., 30:70], size=(96, 64), mode="bilinear").mean(1, keepdim=True)
    want = m(hint)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if w is not None:
            torch.testing.assert_close(g, w * 0.5)


def test_super_resolution_uses_nearest_exact_at_latent_size():
    m = net("tiny_super_resolution")
    latent_img = torch.rand(1, 16, 5, 7, generator=torch.Generator().manual_seed(2))
    got = applied(m, latent_img).stage_c_inputs((1, 16, 10, 14), 1.0, percent_to_sigma)
    # latent 10x14 x1 rounds up to 16x16; 7/5 > 16/16 so round((7 - 7*(1/1.4))/2) = 1 column each side.
    want = m(F.interpolate(latent_img[..., 1:6], size=(16, 16), mode="nearest-exact"))
    torch.testing.assert_close(got[0], want[0])


def test_percent_range_gates_by_sigma():
    c = applied(net(), torch.rand(1, 3, 64, 64), start_percent=0.2, end_percent=0.6)
    hi, lo = percent_to_sigma(0.2), percent_to_sigma(0.6)
    assert hi > lo > 0
    shape = (1, 16, 2, 2)
    assert c.stage_c_inputs(shape, hi * 1.01, percent_to_sigma) is None
    assert c.stage_c_inputs(shape, lo * 0.99, percent_to_sigma) is None
    assert c.stage_c_inputs(shape, hi, percent_to_sigma) is not None
    assert c.stage_c_inputs(shape, torch.tensor([(hi + lo) / 2]), percent_to_sigma) is not None


def test_chained_controls_sum_and_run_once_per_shape():
    a_net, b_net = net(seed=1), net(seed=2)
    calls = []
    a_net.register_forward_hook(lambda *_: calls.append("a"))
    img = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    first = applied(a_net, img, strength=0.7)
    second = applied(b_net, img, strength=1.3, previous=first, start_percent=0.5)
    shape = (2, 16, 2, 2)
    early = second.stage_c_inputs(shape, 50.0, percent_to_sigma)  # before `second` starts: only `first`
    late = second.stage_c_inputs(shape, 0.5, percent_to_sigma)
    hint = F.interpolate(img, size=(64, 64), mode="bilinear").mean(1, keepdim=True)
    wa, wb = a_net(hint), b_net(hint)
    calls.clear()
    for n in range(4):
        torch.testing.assert_close(early[n], wa[n] * 0.7)
        torch.testing.assert_close(late[n], wa[n] * 0.7 + wb[n] * 1.3)
    second.stage_c_inputs(shape, 0.5, percent_to_sigma)
    assert calls == []  # cached per shape
    second.stage_c_inputs((2, 16, 3, 3), 0.5, percent_to_sigma)
    assert calls == ["a"]


def test_wrong_channels_is_a_clear_error():
    c = applied(net("tiny_inpainting"), torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="4-channel"):
        c.stage_c_inputs((1, 16, 2, 2), 1.0, percent_to_sigma)


def test_residuals_drive_stage_c_like_hand_added_ones():
    model, (x, r, txt, pooled) = tiny_stage_c(), stage_c_inputs(b=1, h=2, w=2)
    m = net()
    c = applied(m, torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6)), strength=0.8)
    with torch.no_grad():
        cnet = c.stage_c_inputs(x.shape, 1.0, percent_to_sigma)
        got = model(x, r, txt, pooled, cnet=cnet)
        res = m(F.interpolate(c.hint, size=(64, 64), mode="bilinear").mean(1, keepdim=True))
        hooks = [blk.register_forward_pre_hook(lambda mod, inp, t=res[i]: (
            inp[0] + F.interpolate(t * 0.8, size=inp[0].shape[-2:], mode="bilinear", align_corners=True), *inp[1:]))
            for i, blk in enumerate(resblocks_in_run_order(model))]
        want = model(x, r, txt, pooled)
        for h in hooks:
            h.remove()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
