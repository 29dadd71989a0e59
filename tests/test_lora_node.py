"""LoRA nodes: file listing via env, warnings to the job, chaining, errors; input handles untouched."""
from __future__ import annotations

import os
import threading

import pytest
import torch

from engine.schema import Result, RunContext
from models.lora import LoraError
from models.patching import ModelHandle, applied
from runtime.env import Env
from nodes.lora import LoRA, LoRAStageB
from tests.lora_helpers import (assert_bit_identical, factors, save, snapshot, tiny_stage_b, tiny_stage_c,
                                tiny_text_encoder)
from tests.nodes_helpers import tmp_config


@pytest.fixture
def env(tmp_path):
    loras = tmp_path / "weights" / "loras"
    (loras / "sub").mkdir(parents=True)
    up, down = factors(32, (32,), 2, seed=1)
    te_up, te_down = factors(64, (32,), 2, seed=2)
    save(loras / "mixed.safetensors", {
        "lora_prior_unet_down_blocks_0_2_kv_mapper_1.lora_up.weight": up,
        "lora_prior_unet_down_blocks_0_2_kv_mapper_1.lora_down.weight": down,
        "lora_prior_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": te_up,
        "lora_prior_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": te_down,
        "lora_prior_unet_some_layer_we_do_not_have.lora_up.weight": up,
        "lora_prior_unet_some_layer_we_do_not_have.lora_down.weight": down})
    save(loras / "sub" / "sd15.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": up,
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": down})
    key = next(k for k in tiny_stage_b().state_dict() if k.endswith("attention.attn.out_proj.weight"))
    out, cols = tiny_stage_b().state_dict()[key].shape
    b_up, b_down = factors(out, (cols,), 2, seed=3)
    layer = "lora_decoder_unet_" + key[: -len(".weight")].replace(".", "_")
    save(loras / "stage_b.safetensors", {f"{layer}.lora_up.weight": b_up, f"{layer}.lora_down.weight": b_down})
    (loras / "notes.txt").write_text("not a LoRA")
    return Env(tmp_config(tmp_path, demo=False))


def ctx_for(env):
    warnings: list[str] = []
    ctx = RunContext(node_id="7", prompt_id="p", env=env, cancel=threading.Event(), on_warning=warnings.append)
    return ctx, warnings


def test_choices_check_and_fingerprint(env):
    # Each node lists only LoRAs for its model, read from the keys (the SD1.5 one fits neither).
    assert LoRA.INPUTS[2].choice_list(env) == ["mixed.safetensors"]
    assert LoRAStageB.INPUTS[1].choice_list(env) == ["stage_b.safetensors"]
    assert LoRA.check(env, {"lora_name": "mixed.safetensors"}) == {}
    assert "not found" in LoRA.check(env, {"lora_name": "../loras/x.safetensors"})["lora_name"]
    fp = LoRA.fingerprint(env, {"lora_name": "mixed.safetensors"})
    os.utime(env.weight_path("loras", "mixed.safetensors"), ns=(1, 1))  # replaced on disk: re-read
    assert LoRA.fingerprint(env, {"lora_name": "mixed.safetensors"}) != fp


def test_lora_node_patches_both_models_and_warns_about_the_rest(env):
    unet, te = tiny_stage_c(), tiny_text_encoder()
    base_u, base_t = snapshot(unet), snapshot(te)
    hu, ht = ModelHandle(unet), ModelHandle(te)
    ctx, warnings = ctx_for(env)
    result = LoRA().run(ctx, stage_c=hu, text_encoder=ht, lora_name="mixed.safetensors",
                        strength_model=0.5, strength_text=2.0)
    assert isinstance(result, Result)
    new_u, new_t, text = result.outputs
    assert result.ui == {"text": [text]}
    assert "4 of 6 tensors applied" in text and "stage_c: 1 layers" in text and "text_encoder: 1 layers" in text
    assert len(warnings) == 1 and "some_layer_we_do_not_have" in warnings[0] and "no layer of this name" in warnings[0]
    assert hu.patches == () and ht.patches == () and new_u.module is unet and new_t.module is te
    assert [p.strength for p in new_u.patches] == [0.5] and [p.strength for p in new_t.patches] == [2.0]
    # chaining a second LoRA node stacks on top
    again = LoRA().run(ctx, stage_c=new_u, text_encoder=new_t, lora_name="mixed.safetensors",
                       strength_model=1.0, strength_text=0.0).outputs
    assert len(again[0].patches) == 2 and len(again[1].patches) == 2
    with applied(again[0]), applied(again[1]):
        pass
    assert_bit_identical(unet, base_u)
    assert_bit_identical(te, base_t)


def test_lora_node_without_text_encoder_and_foreign_lora(env):
    ctx, warnings = ctx_for(env)
    new_u, new_t, text = LoRA().run(ctx, stage_c=ModelHandle(tiny_stage_c()), lora_name="mixed.safetensors").outputs
    assert new_t is None and len(new_u.patches) == 1
    assert any("no text encoder is connected" in w for w in warnings)
    with pytest.raises(LoraError, match="different model.*SD1.5/SDXL"):
        LoRA().run(ctx, stage_c=ModelHandle(tiny_stage_c()), lora_name="sub/sd15.safetensors")
    with pytest.raises(LoraError, match="Stage B"):
        LoRA().run(ctx, stage_c=ModelHandle(tiny_stage_c()), lora_name="stage_b.safetensors")


def test_stage_b_node(env):
    model = tiny_stage_b()
    ctx, warnings = ctx_for(env)
    handle = ModelHandle(model)
    new, text = LoRAStageB().run(ctx, stage_b=handle, lora_name="stage_b.safetensors", strength=1.5).outputs
    assert handle.patches == () and len(new.patches) == 1 and warnings == [] and "stage_b: 1 layers" in text
    with pytest.raises(LoraError, match="Stage C"):
        LoRAStageB().run(ctx, stage_b=handle, lora_name="mixed.safetensors")
