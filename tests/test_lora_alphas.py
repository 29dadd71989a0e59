"""Alpha for files without `.alpha` tensors: diffusers metadata, a PEFT sidecar, or the scale-1 convention."""
from __future__ import annotations

import json
import math

import torch
from safetensors.torch import save_file

from models.lora import apply_lora
from models.patching import ModelHandle, applied
from tests.lora_helpers import factors, snapshot, tiny_stage_c

Q = "up_blocks.0.2.attention.to_q"
KV = "up_blocks.0.2.kv_mapper.1"


def write(path, metadata=None):
    up_q, down_q = factors(32, (32,), 4, seed=1)
    up_kv, down_kv = factors(32, (32,), 4, seed=2)
    tensors = {f"prior.{Q}.lora_A.weight": down_q, f"prior.{Q}.lora_B.weight": up_q,
               f"prior.{KV}.lora_A.weight": down_kv, f"prior.{KV}.lora_B.weight": up_kv}
    save_file(tensors, str(path), metadata=metadata)
    return (up_q, down_q), (up_kv, down_kv)


def deltas(model, path):
    base = snapshot(model)
    new, _, report = apply_lora(path, unet=ModelHandle(model), unet_kind="stage_c")
    with applied(new) as m:
        q = m.get_parameter("up_blocks.0.2.attention.attn.in_proj_weight")[:32] - base[
            "up_blocks.0.2.attention.attn.in_proj_weight"][:32]
        kv = m.get_parameter(f"{KV}.weight") - base[f"{KV}.weight"]
    return q.detach(), kv.detach(), report


def check(got, factors_, scale):
    up, down = factors_
    torch.testing.assert_close(got, scale * up @ down, rtol=1e-5, atol=1e-5)


def test_no_alpha_means_scale_one_and_says_so(tmp_path):
    fq, fkv = write(tmp_path / "plain.safetensors")
    q, kv, report = deltas(tiny_stage_c(), tmp_path / "plain.safetensors")
    check(q, fq, 1.0)
    check(kv, fkv, 1.0)
    assert "2 layer(s) carry no alpha" in report.text() and report.warnings() == []


def test_diffusers_metadata_alpha_and_alpha_pattern(tmp_path):
    meta = {"format": "pt", "lora_adapter_metadata": json.dumps(
        {"prior.r": 4, "prior.lora_alpha": 8, "prior.alpha_pattern": {"kv_mapper.1": 2}, "prior.use_rslora": False})}
    fq, fkv = write(tmp_path / "meta.safetensors", meta)
    q, kv, report = deltas(tiny_stage_c(), tmp_path / "meta.safetensors")
    check(q, fq, 8 / 4)
    check(kv, fkv, 2 / 4)
    assert "no alpha" not in report.text()


def test_peft_sidecar_with_rslora(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    fq, fkv = write(folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 6, "use_rslora": True}))
    q, kv, _ = deltas(tiny_stage_c(), folder / "adapter_model.safetensors")
    check(q, fq, 6 / math.sqrt(4))
    check(kv, fkv, 6 / math.sqrt(4))
