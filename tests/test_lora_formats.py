"""Each LoRA key format lands on the right parameter with ΔW = strength·alpha/rank·up@down."""
from __future__ import annotations

import torch
import pytest

from models.lora import Models, apply_lora, lora_patches
from models.patching import ModelHandle, applied
from tests.lora_helpers import (assert_bit_identical, factors, save, snapshot, tiny_stage_b, tiny_stage_c,
                                tiny_text_encoder)

C = 32  # tiny Stage C / text encoder width


def expected(base: torch.Tensor, up: torch.Tensor, down: torch.Tensor, scale: float) -> torch.Tensor:
    """Independent ΔW in float64: scale · up @ down, reshaped to the weight."""
    d = up.double().flatten(1) @ down.double().flatten(1)
    return base.double() + scale * d.reshape(base.shape)


def close(got: torch.Tensor, want: torch.Tensor) -> None:
    """float32 merge vs float64 reference: a few float32 ulps."""
    torch.testing.assert_close(got.double(), want.double(), rtol=1e-5, atol=1e-5)


def merged(handle: ModelHandle) -> dict[str, torch.Tensor]:
    with applied(handle) as m:
        return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_kohya_prior_split_qkv_out_proj_conv_and_alpha(tmp_path):
    model = tiny_stage_c()
    base = snapshot(model)
    pfx = "lora_prior_unet_down_blocks_0_2_attention_attn_"
    tensors, parts = {}, {}
    for i, part in enumerate(("to_q", "to_k", "to_v", "out_proj")):
        up, down = factors(C, (C,), 4, seed=i)
        tensors |= {f"{pfx}{part}.lora_up.weight": up, f"{pfx}{part}.lora_down.weight": down,
                    f"{pfx}{part}.alpha": torch.tensor(2.0)}
        parts[part] = (up, down)
    up_dw, down_dw = factors(C, (1, 3, 3), 2, seed=9)  # depthwise conv [32,1,3,3], kxk on down
    tensors |= {"lora_prior_unet_down_blocks_0_0_depthwise.lora_up.weight": up_dw[:, :, None, None],
                "lora_prior_unet_down_blocks_0_0_depthwise.lora_down.weight": down_dw}
    up_e, down_e = factors(C, (16, 1, 1), 3, seed=10)  # 1x1 conv embedding.1
    tensors |= {"lora_prior_unet_embedding_1.lora_up.weight": up_e[:, :, None, None],
                "lora_prior_unet_embedding_1.lora_down.weight": down_e,
                "lora_prior_unet_embedding_1.alpha": torch.tensor(1.5)}
    path = save(tmp_path / "k.safetensors", tensors)
    handle = ModelHandle(model)
    new, _, report = apply_lora(path, unet=handle, unet_kind="stage_c", strength_unet=0.7)
    assert handle.patches == () and report.unmatched == [] and report.matched_tensors == len(tensors)
    got = merged(new)
    w = base["down_blocks.0.2.attention.attn.in_proj_weight"].double()
    for i, part in enumerate(("to_q", "to_k", "to_v")):
        rows = slice(i * C, (i + 1) * C)
        w[rows] = expected(w[rows], *parts[part], 0.7 * 2.0 / 4)
    close(got["down_blocks.0.2.attention.attn.in_proj_weight"].double(), w)
    key = "down_blocks.0.2.attention.attn.out_proj.weight"
    close(got[key].double(), expected(base[key], *parts["out_proj"], 0.7 * 0.5))
    key = "down_blocks.0.0.depthwise.weight"
    close(got[key].double(), expected(base[key], up_dw, down_dw, 0.7))
    key = "embedding.1.weight"
    close(got[key].double(), expected(base[key], up_e, down_e, 0.7 * 1.5 / 3))
    untouched = set(base) - {"down_blocks.0.2.attention.attn.in_proj_weight", "down_blocks.0.0.depthwise.weight",
                             "down_blocks.0.2.attention.attn.out_proj.weight", "embedding.1.weight"}
    assert all(torch.equal(got[k], base[k]) for k in untouched)
    assert_bit_identical(model, base)


@pytest.mark.parametrize("style", ["peft", "diffusers_lora_dot", "processor", "bare", "unet", "lora_unet_"])
def test_diffusers_and_peft_names(tmp_path, style):
    model = tiny_stage_c()
    base = snapshot(model)
    up_k, down_k = factors(C, (C,), 4, seed=1)
    up_o, down_o = factors(C, (C,), 4, seed=2)
    up_m, down_m = factors(4 * C, (2 * C,), 4, seed=3)  # first up ResBlock has a skip: [128, 64]
    names = {
        "peft": ("prior.up_blocks.1.2.attention.to_k", "prior.up_blocks.1.2.attention.to_out.0",
                 "prior.up_blocks.1.0.channelwise.0", ".lora_B.weight", ".lora_A.weight"),
        "diffusers_lora_dot": ("prior.up_blocks.1.2.attention.to_k", "prior.up_blocks.1.2.attention.to_out.0",
                               "prior.up_blocks.1.0.channelwise.0", ".lora.up.weight", ".lora.down.weight"),
        "processor": ("prior.up_blocks.1.2.attention.processor.to_k_lora",
                      "prior.up_blocks.1.2.attention.processor.to_out_lora",
                      "prior.up_blocks.1.0.channelwise.0", ".up.weight", ".down.weight"),
        "bare": ("up_blocks.1.2.attention.to_k", "up_blocks.1.2.attention.attn.out_proj",
                 "up_blocks.1.0.channelwise.0", ".lora_B.weight", ".lora_A.weight"),
        "unet": ("unet.up_blocks.1.2.attention.attn.to_k", "unet.up_blocks.1.2.attention.to_out.0",
                 "base_model.model.up_blocks.1.0.channelwise.0", ".lora_B.weight", ".lora_A.weight"),
        "lora_unet_": ("lora_unet_up_blocks_1_2_attention_to_k", "lora_unet_up_blocks_1_2_attention_to_out_0",
                       "lora_unet_up_blocks_1_0_channelwise_0", ".lora_up.weight", ".lora_down.weight"),
    }[style]
    k, o, m, up_sfx, down_sfx = names
    path = save(tmp_path / "d.safetensors", {k + up_sfx: up_k, k + down_sfx: down_k, o + up_sfx: up_o,
                                             o + down_sfx: down_o, m + up_sfx: up_m, m + down_sfx: down_m})
    new, _, report = apply_lora(path, unet=ModelHandle(model), unet_kind="stage_c", strength_unet=1.3)
    assert report.unmatched == [] and report.patched == {"stage_c": 3}
    got = merged(new)
    packed = base["up_blocks.1.2.attention.attn.in_proj_weight"].double()
    packed[C:2 * C] = expected(packed[C:2 * C], up_k, down_k, 1.3)
    close(got["up_blocks.1.2.attention.attn.in_proj_weight"].double(), packed)
    key = "up_blocks.1.2.attention.attn.out_proj.weight"
    close(got[key].double(), expected(base[key], up_o, down_o, 1.3))
    key = "up_blocks.1.0.channelwise.0.weight"
    close(got[key].double(), expected(base[key], up_m, down_m, 1.3))


@pytest.mark.parametrize("prefix", ["lora_prior_te_", "lora_te_", "text_encoder.", "text_encoders.clip_g.transformer."])
def test_text_encoder_lora(tmp_path, prefix):
    te, unet = tiny_text_encoder(), tiny_stage_c()
    base = snapshot(te)
    up, down = factors(64, (C,), 4, seed=5)
    layer = "text_model.encoder.layers.1.mlp.fc1"
    name = prefix + (layer.replace(".", "_") if prefix.startswith("lora") else layer)
    kohya = prefix.startswith("lora")
    suffix = (".lora_up.weight", ".lora_down.weight") if kohya else (".lora_B.weight", ".lora_A.weight")
    path = save(tmp_path / "te.safetensors", {name + suffix[0]: up, name + suffix[1]: down})
    unet_h, te_h = ModelHandle(unet), ModelHandle(te)
    new_unet, new_te, report = apply_lora(path, unet=unet_h, unet_kind="stage_c", text_encoder=te_h,
                                          strength_unet=1.0, strength_te=0.5)
    assert report.patched == {"text_encoder": 1} and new_unet.patches == ()
    got = merged(new_te)
    key = "clip." + layer + ".weight"
    close(got[key].double(), expected(base[key], up, down, 0.5))
    assert_bit_identical(te, base)


def test_locon_tucker_mid(tmp_path):
    model = tiny_stage_c()
    base = snapshot(model)
    gen = torch.Generator().manual_seed(3)
    up, down, mid = torch.randn(C, 2, 1, 1, generator=gen), torch.randn(2, 1, 1, 1, generator=gen), \
        torch.randn(2, 2, 3, 3, generator=gen)
    name = "lora_prior_unet_up_blocks_0_0_depthwise"
    path = save(tmp_path / "t.safetensors", {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down,
                                             f"{name}.lora_mid.weight": mid, f"{name}.alpha": torch.tensor(1.0)})
    new, _, report = apply_lora(path, unet=ModelHandle(model), unet_kind="stage_c")
    assert report.unmatched == []
    want = torch.zeros(C, 1, 3, 3, dtype=torch.float64)
    for o in range(C):  # ΔW[o,i,k,l] = Σ_ab up[o,a] mid[a,b,k,l] down[b,i]
        for a in range(2):
            for b in range(2):
                want[o, 0] += up[o, a, 0, 0].double() * mid[a, b].double() * down[b, 0, 0, 0].double()
    key = "up_blocks.0.0.depthwise.weight"
    close(merged(new)[key].double(), base[key].double() + 0.5 * want)


def test_dora_scale_renormalises_rows(tmp_path):
    model = tiny_stage_c()
    base = snapshot(model)
    up, down = factors(C, (C,), 4, seed=7)
    mag = torch.rand(C) + 0.5
    name = "lora_prior_unet_down_blocks_0_2_kv_mapper_1"
    path = save(tmp_path / "dora.safetensors", {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down,
                                                f"{name}.dora_scale": mag[:, None]})
    new, _, _ = apply_lora(path, unet=ModelHandle(model), unet_kind="stage_c", strength_unet=0.5)
    key = "down_blocks.0.2.kv_mapper.1.weight"
    w = base[key].double()
    v = w + up.double() @ down.double()
    dora = mag.double()[:, None] * v / v.norm(dim=1, keepdim=True)
    close(merged(new)[key].double(), w + 0.5 * (dora - w))


def test_stage_b_decoder_prefix(tmp_path):
    model = tiny_stage_b()
    base = snapshot(model)
    key = next(k for k in base if k.endswith("attention.attn.out_proj.weight"))
    layer = key[: -len(".weight")].replace(".", "_")
    out, cols = base[key].shape
    up, down = factors(out, (cols,), 2, seed=4)
    path = save(tmp_path / "b.safetensors", {f"lora_decoder_unet_{layer}.lora_up.weight": up,
                                             f"lora_decoder_unet_{layer}.lora_down.weight": down})
    new, _, report = apply_lora(path, unet=ModelHandle(model), unet_kind="stage_b", strength_unet=2.0)
    assert report.patched == {"stage_b": 1}
    close(merged(new)[key].double(), expected(base[key], up, down, 2.0))
    # the same file offered to Stage C is reported as a Stage B LoRA, not silently ignored
    with pytest.raises(ValueError, match="Stage B"):
        lora_patches({f"lora_decoder_unet_{layer}.lora_up.weight": up,
                      f"lora_decoder_unet_{layer}.lora_down.weight": down},
                     Models(unet=tiny_stage_c(), unet_kind="stage_c"))


def test_dora_scale_per_input_column_lycoris_layout(tmp_path):
    model = tiny_stage_c()
    base = snapshot(model)
    up, down = factors(C, (C,), 4, seed=8)
    mag = torch.rand(1, C) + 0.5  # square layer: only the [1, in] layout says "per column"
    name = "lora_prior_unet_up_blocks_1_2_kv_mapper_1"
    path = save(tmp_path / "dora_col.safetensors", {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down,
                                                    f"{name}.dora_scale": mag, f"{name}.alpha": torch.tensor(2.0)})
    new, _, _ = apply_lora(path, unet=ModelHandle(model), unet_kind="stage_c")
    key = "up_blocks.1.2.kv_mapper.1.weight"
    v = base[key].double() + 0.5 * up.double() @ down.double()
    close(merged(new)[key], mag.double() * v / v.norm(dim=0, keepdim=True))
