"""Against the real PEFT library: a DoRA adapter saved by PEFT 0.21 (alpha 6, r 4) and PEFT's own merge.

tests/data/lora_peft/ was written once on a machine with PEFT (not a dependency here): a tiny CLIP text
tower, `get_peft_model(..., LoraConfig(r=4, lora_alpha=6, use_dora=True, init_lora_weights=False))` with
random factors and magnitudes, `save_pretrained` (adapter_model.safetensors + adapter_config.json), and
`merge_and_unload()` weights next to the base weights of every targeted layer (expected.safetensors).
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from models.lora import apply_lora
from models.patching import ModelHandle, applied
from models.text_encoder import TEXT_ENCODER_PRESETS, TextEncoder

DATA = Path(__file__).parent / "data" / "lora_peft"


def test_peft_dora_adapter_merges_like_peft():
    expected = load_file(str(DATA / "expected.safetensors"))
    te = TextEncoder(TEXT_ENCODER_PRESETS["tiny"])
    layers = [k[len("base."):] for k in expected if k.startswith("base.")]
    with torch.no_grad():
        for name in layers:
            te.get_parameter("clip." + name).copy_(expected["base." + name])
    handle = ModelHandle(te)
    _, new, report = apply_lora(DATA / "adapter_model.safetensors", unet=None, unet_kind="stage_c",
                                text_encoder=handle)
    assert report.unmatched == [] and report.patched == {"text_encoder": 12} and "no alpha" not in report.text()
    with applied(new) as m:
        for name in layers:
            got = m.get_parameter("clip." + name).detach()
            torch.testing.assert_close(got, expected["merged." + name], rtol=1e-5, atol=1e-5, msg=name)
            assert not torch.allclose(got, expected["base." + name])
    for name in layers:
        assert torch.equal(te.get_parameter("clip." + name), expected["base." + name])
