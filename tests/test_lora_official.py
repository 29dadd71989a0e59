"""Official StableCascade LoRA format: `weights.{i}` in the order the official training code saves them."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from models.lora import Models, apply_lora, lora_patches
from models.patching import ModelHandle, applied
from tests.lora_helpers import assert_bit_identical, save, snapshot, tiny_stage_c, tiny_text_encoder


class OfficialLoRA(nn.Module):
    """Independent restatement of the official parametrization: W + (up @ down) · alpha/rank, alpha 1."""

    def __init__(self, out: int, inp: int, rank: int, gen: torch.Generator):
        super().__init__()
        self.lora_down = nn.Parameter(torch.randn(rank, inp, generator=gen))
        self.lora_up = nn.Parameter(torch.randn(out, rank, generator=gen))
        self.scale = 1.0 / rank

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + (self.lora_up @ self.lora_down).view(w.shape) * self.scale


def official_lora_file(model: nn.Module, rank: int = 3) -> tuple[dict[str, torch.Tensor], nn.Module]:
    """Parametrize a copy like the official `apply_lora(filters=['.attn'])`, save like train_c_lora."""
    ref = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(11)
    for name, module in ref.named_modules():  # registering while iterating, as the official code does
        if ".attn" not in name:
            continue
        for pname in ("weight", "in_proj_weight"):
            p = module._parameters.get(pname)
            if isinstance(p, nn.Parameter) and not parametrize.is_parametrized(module, pname):
                parametrize.register_parametrization(module, pname, OfficialLoRA(p.shape[0], p.shape[1], rank, gen))
                break
    loras = [m for m in ref.modules() if isinstance(m, OfficialLoRA)]
    tensors = {}
    for i, m in enumerate(loras):
        tensors[f"weights.{i}.lora_down"] = m.lora_down.detach().clone()
        tensors[f"weights.{i}.lora_up"] = m.lora_up.detach().clone()
    return tensors, ref


def test_official_format_matches_official_parametrization(tmp_path):
    model = tiny_stage_c()
    base = snapshot(model)
    tensors, ref = official_lora_file(model)
    assert len(tensors) == 2 * 8  # 4 attention blocks × (packed in_proj, out_proj) × (down, up)
    path = save(tmp_path / "official.safetensors", tensors)
    new, _, report = apply_lora(path, unet=ModelHandle(model), unet_kind="stage_c")
    assert report.unmatched == [] and report.patched == {"stage_c": 8} and "official" in report.formats
    with applied(new) as m, torch.no_grad():
        for name, module in ref.named_modules():
            for pname in ("weight", "in_proj_weight"):
                if parametrize.is_parametrized(module, pname):
                    want = getattr(module, pname)
                    got = m.get_parameter(f"{name}.{pname}")
                    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert_bit_identical(model, base)


def test_official_format_for_other_model_size_is_reported():
    model = tiny_stage_c()
    tensors, _ = official_lora_file(model)
    tensors = {k: v for k, v in tensors.items() if not k.startswith(("weights.6.", "weights.7."))}
    with pytest.raises(ValueError, match="6 layers but this stage_c has 8"):
        lora_patches(tensors, Models(unet=model, unet_kind="stage_c"))


def test_retoken_offsets_on_known_rows_and_added_tokens_reported(tmp_path):
    unet, te = tiny_stage_c(), tiny_text_encoder()
    base_te = snapshot(te)
    tensors, _ = official_lora_file(unet)
    gen = torch.Generator().manual_seed(2)
    offsets = torch.randn(3, 32, generator=gen)
    tensors |= {"embeddings.embeddings": offsets, "embeddings.indices": torch.tensor([320, 49408, 1125])}
    path = save(tmp_path / "retoken.safetensors", tensors)
    u, t, report = apply_lora(path, unet=ModelHandle(unet), unet_kind="stage_c", text_encoder=ModelHandle(te),
                              strength_te=0.5)
    assert report.patched == {"text_encoder": 1, "stage_c": 8}
    assert any("49408" in n and "NOT applied" in n for n in report.notes)
    assert any("NOT applied" in w for w in report.warnings())
    key = "clip.text_model.embeddings.token_embedding.weight"
    with applied(t) as m:
        got = m.get_parameter(key).detach().clone()
    want = base_te[key].clone()
    want[320] += 0.5 * offsets[0]
    want[1125] += 0.5 * offsets[2]
    torch.testing.assert_close(got, want)
    assert_bit_identical(te, base_te)
    # without a text encoder the offsets are reported as not applied
    _, _, report = apply_lora(path, unet=ModelHandle(unet), unet_kind="stage_c")
    assert {k for k, _ in report.unmatched} == {"embeddings.embeddings", "embeddings.indices"}
