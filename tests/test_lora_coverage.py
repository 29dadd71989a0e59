"""Full-size coverage: every layer name a trainer can emit for Stage C / CLIP-bigG maps to a real parameter."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.lora import Models, lora_patches
from models.lora.names import official_attn_targets
from models.stage_b import STAGE_B_PRESETS, StageB
from models.stage_c import STAGE_C_PRESETS, StageC
from models.text_encoder import TextEncoder

KEYS = Path(__file__).parent / "data" / "keys"
RANK = 4


def official_params(name: str) -> dict[str, list[int]]:
    return json.loads((KEYS / f"{name}.json").read_text())["params"]


def kohya_names(params: dict[str, list[int]], prefix: str) -> dict[str, tuple[str, slice, list[int]]]:
    """kohya layer name → (parameter, rows, shape of the rows), derived from the official key list alone."""
    out = {}
    for key, shape in params.items():
        if key.endswith(".in_proj_weight"):
            c = shape[0] // 3
            layer = key[: -len(".in_proj_weight")].replace(".", "_")
            for i, part in enumerate(("to_q", "to_k", "to_v")):
                out[f"{prefix}{layer}_{part}"] = (key, slice(i * c, (i + 1) * c), [c, *shape[1:]])
        elif key.endswith(".weight") and len(shape) >= 2 and "embeddings" not in key:
            out[prefix + key[: -len(".weight")].replace(".", "_")] = (key, slice(None), shape)
    return out


def meta_lora(names: dict[str, tuple[str, slice, list[int]]]) -> dict[str, torch.Tensor]:
    """Shape-only (meta) kohya tensors; conv layers get [r,in,kh,kw] down and [out,r,1,1] up."""
    tensors = {}
    for name, (_, _, shape) in names.items():
        conv = len(shape) == 4
        tensors[f"{name}.lora_down.weight"] = torch.empty(RANK, *shape[1:], device="meta")
        tensors[f"{name}.lora_up.weight"] = torch.empty(shape[0], RANK, *([1, 1] if conv else []), device="meta")
        tensors[f"{name}.alpha"] = torch.tensor(float(RANK))
    return tensors


def check_patches(patches, names, params_of_model):
    by_key = {}
    for p in patches:
        by_key.setdefault(p.key, []).append(p)
    for name, (key, rows, shape) in names.items():
        assert key in params_of_model, key
        assert list(params_of_model[key].shape[1:]) == shape[1:], key
    assert sum(len(v) for v in by_key.values()) == len(names)
    for key, ps in by_key.items():
        full = params_of_model[key].shape
        for p in ps:
            d = p.delta
            rows = (d.row_stop or full[0]) - d.row_start
            assert d.up.shape[0] == rows and d.scale == 1.0
            assert d.down.shape[1:] == full[1:] or (len(full) == 2 and d.down.shape[1] == full[1]), key


def test_every_onetrainer_stage_c_name_maps_on_the_full_model():
    params = official_params("stage_c")
    with torch.device("meta"):
        model = StageC(STAGE_C_PRESETS["full"])
    names = kohya_names(params, "lora_prior_unet_")
    for must in ("channelwise_0", "channelwise_4", "depthwise", "mapper_sca", "mapper_crp", "kv_mapper_1",
                 "attention_attn_to_q", "attention_attn_out_proj", "clip_txt_pooled_mapper", "clip_img_mapper",
                 "embedding_1", "clf_1", "down_downscalers_1_1_blocks_0", "up_upscalers_0_1_blocks_1"):
        assert any(n.endswith(must) for n in names), must
    patches, report = lora_patches(meta_lora(names), Models(unet=model, unet_kind="stage_c"))
    assert report.unmatched == [] and report.matched_tensors == 3 * len(names)
    check_patches(patches["unet"], names, dict(model.named_parameters()))


def test_every_text_encoder_name_maps_on_clip_bigg():
    params = {"clip." + k: v for k, v in official_params("clip_text_bigg").items()}
    with torch.device("meta"):
        te = TextEncoder()
    names = {n.replace("lora_prior_te_clip_", "lora_prior_te_"): t
             for n, t in kohya_names(params, "lora_prior_te_").items() if "encoder_layers" in n}
    assert len(names) == 32 * 6
    patches, report = lora_patches(meta_lora(names), Models(unet=None, unet_kind="stage_c", text_encoder=te))
    assert report.unmatched == [] and report.patched == {"text_encoder": 32 * 6}
    check_patches(patches["text_encoder"], names, dict(te.named_parameters()))


def test_official_order_of_attention_layers_matches_the_official_key_order():
    """The official format has no names: it relies on our module tree listing `.attn` layers in official order."""
    with torch.device("meta"):
        model = StageC(STAGE_C_PRESETS["full"])
    ours = [t.key for t in official_attn_targets(model)]
    official = [k for k in official_params("stage_c") if ".attn" in k and k.endswith(("in_proj_weight", ".weight"))]
    assert ours == official and len(ours) == 2 * (8 + 24 + 24 + 8)


def peft_meta_lora(params: dict[str, list[int]], prefix: str) -> tuple[dict[str, torch.Tensor], int]:
    """PEFT-style meta tensors for every matrix/conv weight of a diffusers key list."""
    tensors, layers = {}, 0
    for key, shape in params.items():
        if key.endswith(".weight") and len(shape) >= 2:
            layer = prefix + key[: -len(".weight")]
            tensors[f"{layer}.lora_A.weight"] = torch.empty(RANK, *shape[1:], device="meta")
            tensors[f"{layer}.lora_B.weight"] = torch.empty(shape[0], RANK, *([1, 1] if len(shape) == 4 else []),
                                                            device="meta")
            layers += 1
    return tensors, layers


@pytest.mark.parametrize("kind, keys, preset, prefix", [
    ("stage_c", "diffusers_prior", "full", "prior."), ("stage_c", "diffusers_prior_lite", "lite", "prior."),
    ("stage_b", "diffusers_decoder", "full", "decoder."), ("stage_b", "diffusers_decoder_lite", "lite", "")])
def test_every_diffusers_layer_name_maps(kind, keys, preset, prefix):
    """diffusers names (split to_q/k/v, to_out.0, Stage B's clip_txt_pooled_mapper) cover the whole model."""
    with torch.device("meta"):
        model = StageC(STAGE_C_PRESETS[preset]) if kind == "stage_c" else StageB(STAGE_B_PRESETS[preset])
    tensors, layers = peft_meta_lora(official_params(keys), prefix)
    patches, report = lora_patches(tensors, Models(unet=model, unet_kind=kind))
    assert report.unmatched == [] and report.patched == {kind: layers}
    params = dict(model.named_parameters())
    for p in patches["unet"]:
        d, full = p.delta, params[p.key].shape
        assert d.up.shape[0] == (d.row_stop or full[0]) - d.row_start and d.down.shape[1:] == full[1:], p.key


def test_every_kohya_stage_b_name_maps_on_the_full_decoder():
    with torch.device("meta"):
        model = StageB(STAGE_B_PRESETS["full"])
    names = kohya_names(official_params("stage_b"), "lora_decoder_unet_")
    patches, report = lora_patches(meta_lora(names), Models(unet=model, unet_kind="stage_b"))
    assert report.unmatched == [] and report.matched_tensors == 3 * len(names)
    check_patches(patches["unet"], names, dict(model.named_parameters()))
