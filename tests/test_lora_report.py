"""Nothing is dropped silently: unmatched keys are reported with a reason; a foreign LoRA is an error."""
from __future__ import annotations

import pytest
import torch

from models.lora import LoraError, Models, apply_lora, load_lora, lora_patches
from models.patching import ModelHandle
from tests.lora_helpers import factors, save, tiny_stage_c


def kohya(name: str, out: int, cols: int, seed: int = 0) -> dict[str, torch.Tensor]:
    up, down = factors(out, (cols,), 2, seed)
    return {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down, f"{name}.alpha": torch.tensor(2.0)}


SD15 = {**kohya("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320),
        **kohya("lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320, 1),
        **kohya("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768, 2)}


def test_sd15_lora_is_an_error_naming_the_model():
    with pytest.raises(LoraError) as err:
        lora_patches(SD15, Models(unet=tiny_stage_c(), unet_kind="stage_c"), source="sd15.safetensors")
    msg = str(err.value)
    assert "different model" in msg and "SD1.5/SDXL" in msg and "lora_unet_down_blocks_0_attentions_0" in msg


def test_sdxl_lora_named_as_sdxl():
    keys = {**kohya("lora_te1_text_model_encoder_layers_0_mlp_fc1", 8, 8),
            **kohya("lora_unet_input_blocks_4_1_proj_in", 8, 8)}
    with pytest.raises(LoraError, match="SDXL"):
        lora_patches(keys, Models(unet=tiny_stage_c(), unet_kind="stage_c"))


def test_partial_match_reports_each_unused_key_with_a_reason():
    good = kohya("lora_prior_unet_down_blocks_0_2_kv_mapper_1", 32, 32)
    odd = {"lora_prior_unet_down_blocks_0_2_kv_mapper_1.hada_w1_a": torch.ones(2, 2),
           "some_random_tensor": torch.ones(3)}
    wrong_shape = kohya("lora_prior_unet_clf_1", 64, 32)  # clf.1 is [16, 32, 1, 1]
    te_keys = kohya("lora_prior_te_text_model_encoder_layers_0_mlp_fc1", 64, 32)
    _, report = lora_patches({**good, **odd, **wrong_shape, **te_keys, **SD15},
                             Models(unet=tiny_stage_c(), unet_kind="stage_c"), source="mix.safetensors")
    assert report.matched_tensors == 3 and report.patched == {"stage_c": 1}
    reasons = dict(report.unmatched)
    assert "LoHa" in reasons["lora_prior_unet_down_blocks_0_2_kv_mapper_1.hada_w1_a"]
    assert "not a LoRA tensor" in reasons["some_random_tensor"]
    assert "shape mismatch" in reasons["lora_prior_unet_clf_1.lora_up.weight"]
    assert "no text encoder is connected" in reasons["lora_prior_te_text_model_encoder_layers_0_mlp_fc1.alpha"]
    assert "no layer of this name" in reasons["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"]
    assert len(report.unmatched) == 2 + 3 + 3 + 9
    text = report.text()
    assert "mix.safetensors" in text and "3 of 20 tensors applied" in text and "stage_c: 1 layers" in text
    assert any("shape mismatch" in w for w in report.warnings())


def test_incomplete_and_broken_layers(tmp_path):
    up, down = factors(32, (32,), 2, 0)
    half = {"lora_prior_unet_down_blocks_0_2_kv_mapper_1.lora_up.weight": up}
    with pytest.raises(LoraError, match="incomplete"):
        lora_patches(half, Models(unet=tiny_stage_c(), unet_kind="stage_c"))
    nan = kohya("lora_prior_unet_down_blocks_0_2_kv_mapper_1", 32, 32)
    nan["lora_prior_unet_down_blocks_0_2_kv_mapper_1.lora_up.weight"][0, 0] = float("nan")
    with pytest.raises(LoraError, match="NaN"):
        lora_patches(nan, Models(unet=tiny_stage_c(), unet_kind="stage_c"))


def test_only_safetensors_files_are_read(tmp_path):
    pt = tmp_path / "x.pt"
    torch.save({"a": torch.ones(1)}, pt)
    with pytest.raises(LoraError, match="only .safetensors"):
        load_lora(pt)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(LoraError, match="not a readable"):
        apply_lora(junk, unet=ModelHandle(tiny_stage_c()), unet_kind="stage_c")
    empty = save(tmp_path / "empty.safetensors", {"nothing_here": torch.ones(1)})
    with pytest.raises(LoraError, match="none of the LoRA's 1 tensors"):
        apply_lora(empty, unet=ModelHandle(tiny_stage_c()), unet_kind="stage_c")
