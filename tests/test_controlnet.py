"""Stable Cascade ControlNet: published keys, forward vs a float64 functional rendering of the published
structure, strict loading, and Stage C's `cnet` injection checked against hooks that add residuals by hand."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from models.common import ResBlock
from models.controlnet import CONTROLNET_PRESETS
from models.demo import randomise
from models.loading import LoadError, detect, load
from models.loading.networks import expected_shapes, network_spec
from models.stage_c import STAGE_C_PRESETS, StageC

REF = Path(__file__).resolve().parent / "data" / "keys_extensions"  # the shared reference, copied


@pytest.mark.parametrize("preset,ref", [("canny", "controlnet_canny"), ("inpainting", "controlnet_inpainting"),
                                        ("super_resolution", "controlnet_super_resolution")])
def test_full_presets_have_the_published_keys_and_shapes(preset, ref):
    ours = {k: list(v) for k, v in expected_shapes(network_spec("controlnet"), CONTROLNET_PRESETS[preset]).items()}
    assert ours == json.loads((REF / f"{ref}.json").read_text())["params"]


def tiny_file(tmp_path, preset: str, seed: int = 0) -> tuple[Path, dict]:
    spec = network_spec("controlnet")
    model = spec.build(spec.presets[preset])
    randomise(model, torch.Generator().manual_seed(seed))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path = tmp_path / f"{preset}.safetensors"
    save_file(state, str(path))
    return path, state


# -- an independent float64 rendering of the published module structure --------------------------
def bn(x, sd, p, act=True):
    y = F.batch_norm(x, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"], False, 0.0, 1e-3)
    return F.silu(y) if act else y


def conv_bn(x, sd, p, stride=1, groups=1, act=True, padding=None):
    w = sd[p + "0.weight"]
    pad = (w.shape[-1] - 1) // 2 if padding is None else padding
    return bn(F.conv2d(x, w, None, stride, pad, groups=groups), sd, p + "1.", act)


def effnet_features(x, sd, stages):
    """torchvision EfficientNet-V2 features: stem (padding 0 for c_in != 3), (fused) MBConv stages, head."""
    x = conv_bn(x, sd, "backbone.0.", 2, padding=0 if sd["backbone.0.0.weight"].shape[1] != 3 else 1)
    for s, spec in enumerate(stages, start=1):
        for i in range(spec.layers):
            p = f"backbone.{s}.{i}.block."
            stride = spec.stride if i == 0 else 1
            y = x
            if spec.fused and spec.expand != 1:
                y = conv_bn(conv_bn(y, sd, p + "0.", stride), sd, p + "1.", act=False)
            elif spec.fused:
                y = conv_bn(y, sd, p + "0.", stride)
            else:
                y = conv_bn(y, sd, p + "0.")
                y = conv_bn(y, sd, p + "1.", stride, groups=y.shape[1])
                g = F.silu(F.conv2d(y.mean((2, 3), keepdim=True), sd[p + "2.fc1.weight"], sd[p + "2.fc1.bias"]))
                y = y * torch.sigmoid(F.conv2d(g, sd[p + "2.fc2.weight"], sd[p + "2.fc2.bias"]))
                y = conv_bn(y, sd, p + "3.", act=False)
            x = y + x if (stride == 1 and y.shape == x.shape) else y
    return conv_bn(x, sd, f"backbone.{len(stages) + 1}.", padding=0)


def large_features(x, sd, n_blocks=8):
    x = F.conv2d(x, sd["backbone.0.weight"], sd["backbone.0.bias"])
    x = F.conv2d(F.leaky_relu(x, 0.2), sd["backbone.2.weight"], sd["backbone.2.bias"])

    def ln(t, p):
        return F.layer_norm(t.permute(0, 2, 3, 1), t.shape[1:2], sd[p + "weight"], sd[p + "bias"], 1e-5).permute(0, 3, 1, 2)
    for b in range(3, 3 + n_blocks):
        p = f"backbone.{b}.blocks."
        y = F.conv2d(F.gelu(ln(x, p + "0.")), sd[p + "2.weight"], sd[p + "2.bias"], padding=1)
        y = F.conv2d(F.gelu(ln(y, p + "3.")), sd[p + "5.weight"], sd[p + "5.bias"], padding=1)
        x = x + y
    return F.conv2d(x, sd[f"backbone.{3 + n_blocks}.weight"], sd[f"backbone.{3 + n_blocks}.bias"])


@pytest.mark.parametrize("preset", ["tiny_canny", "tiny_rgb", "tiny_inpainting", "tiny_super_resolution"])
def test_forward_matches_functional_rendering(tmp_path, preset):
    path, state = tiny_file(tmp_path, preset)
    cfg = CONTROLNET_PRESETS[preset]
    assert [c.kind for c in detect(path).components] == ["controlnet"]
    net = load(path, "controlnet", dtype="float32")
    assert net.config == cfg
    size = 64 if cfg.bottleneck == "effnet" else 6
    hint = torch.rand(2, cfg.c_in, size, size + 32 * (cfg.bottleneck == "effnet"), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = net(hint)
    sd = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    feats = (effnet_features(hint.double(), sd, cfg.effnet.stages) if cfg.bottleneck == "effnet"
             else large_features(hint.double(), sd))
    assert len(got) == max(cfg.proj_blocks) + 1
    for i, idx in enumerate(cfg.proj_blocks):
        want = F.conv2d(F.leaky_relu(F.conv2d(feats, sd[f"projections.{i}.0.weight"]), 0.2), sd[f"projections.{i}.2.weight"])
        torch.testing.assert_close(got[idx].double(), want, rtol=1e-4, atol=1e-5)
    assert all(got[n] is None for n in range(len(got)) if n not in cfg.proj_blocks)


def test_strict_loading_names_the_problem(tmp_path):
    path, state = tiny_file(tmp_path, "tiny_canny")
    del state["projections.1.2.weight"]
    save_file(state, str(path))
    with pytest.raises(LoadError, match="projections"):
        load(path, "controlnet")


def test_stem_padding_follows_the_official_code(tmp_path):
    # c_in != 3: the replaced stem conv has no padding, so a 64-px hint gives 31 (not 32) after the stem.
    net = load(tiny_file(tmp_path, "tiny_canny")[0], "controlnet", dtype="float32")
    assert net.backbone[0][0].padding == (0, 0) and net.backbone[0][0].stride == (2, 2)
    rgb = load(tiny_file(tmp_path, "tiny_rgb")[0], "controlnet", dtype="float32")
    assert rgb.backbone[0][0].padding == (1, 1)


# -- Stage C injection ------------------------------------------------------------------------------
def tiny_stage_c(seed: int = 0) -> StageC:
    model = StageC(STAGE_C_PRESETS["tiny"]).eval()
    randomise(model, torch.Generator().manual_seed(seed))
    return model


def stage_c_inputs(b=2, h=6, w=5):
    g = torch.Generator().manual_seed(4)
    return (torch.randn(b, 16, h, w, generator=g), torch.rand(b, generator=g),
            torch.randn(b, 77, 32, generator=g), torch.randn(b, 1, 32, generator=g))


def resblocks_in_run_order(model: StageC) -> list[ResBlock]:
    """Down levels then up levels (the official delivery order; Stage C has no repeats)."""
    blocks = [b for lvl in model.down_blocks for b in lvl] + [b for lvl in model.up_blocks for b in lvl]
    return [b for b in blocks if isinstance(b, ResBlock)]


def test_cnet_none_or_zeros_changes_nothing():
    model, args = tiny_stage_c(), stage_c_inputs()
    with torch.no_grad():
        base = model(*args)
        n = len(resblocks_in_run_order(model))
        assert torch.equal(model(*args, cnet=[torch.zeros(1, 32, 3, 3)] * n), base)
        assert torch.equal(model(*args, cnet=[None] * n), base)
        assert torch.equal(model(*args, cnet=[]), base)


@pytest.mark.parametrize("block", [0, 1, 2, 3])
def test_residual_at_block_i_equals_adding_it_by_hand(block):
    model, args = tiny_stage_c(), stage_c_inputs()
    res = torch.randn(2, 32, 3, 4, generator=torch.Generator().manual_seed(5))  # other size: resized to x

    def add(module, inputs):
        x = inputs[0]
        return (x + F.interpolate(res, size=x.shape[-2:], mode="bilinear", align_corners=True), *inputs[1:])

    target = resblocks_in_run_order(model)[block]
    with torch.no_grad():
        handle = target.register_forward_pre_hook(add)
        want = model(*args)
        handle.remove()
        cnet = [None] * 4
        cnet[block] = res
        got = model(*args, cnet=cnet + [res] * 3)  # entries past the last ResBlock are never used
        plain = model(*args)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, plain)
