"""CLIP vision tower: loading (strict, ComfyUI prefixes) vs transformers, and ComfyUI's preprocessing vs PIL."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from models.clip_vision import CLIP_VISION_PRESETS, preprocess
from models.loading import LoadError, detect, load
from models.loading.networks import expected_shapes, network_spec

REF = Path(__file__).resolve().parent / "data" / "keys_extensions" / "clip_vision_l14.json"  # the shared reference
MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])


def tiny_reference(seed: int = 0) -> CLIPVisionModelWithProjection:
    """transformers' own model with the tiny sizes written out here, random non-zero weights."""
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, projection_dim=768, num_hidden_layers=2,
                           num_attention_heads=2, image_size=224, patch_size=14, hidden_act="quick_gelu")
    model = CLIPVisionModelWithProjection(cfg).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


@pytest.mark.parametrize("prefix", ["", "clip_l_vision."])
def test_loaded_tower_equals_transformers(tmp_path, prefix):
    ref = tiny_reference()
    state = {prefix + k: v.contiguous() for k, v in ref.state_dict().items()}
    state[prefix + "vision_model.embeddings.position_ids"] = torch.arange(257)[None]  # older files carry it
    path = tmp_path / "cv.safetensors"
    save_file(state, str(path))
    assert [c.kind for c in detect(path).components] == ["clip_vision"]
    tower = load(path, "clip_vision", dtype="float32")
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref(pixel_values=pixels).image_embeds
        got, last, _ = tower(pixels)
    assert got.shape == (2, 768) and last.shape == (2, 257, 32)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_full_preset_has_the_published_keys_and_shapes():
    spec = network_spec("clip_vision")
    ours = {k: list(v) for k, v in expected_shapes(spec, CLIP_VISION_PRESETS["vit_l14"]).items()}
    assert ours == json.loads(REF.read_text())["params"]


def test_strict_keys(tmp_path):
    state = {k: v.contiguous() for k, v in tiny_reference().state_dict().items()}
    del state["vision_model.post_layernorm.bias"]
    state["vision_model.extra.weight"] = torch.zeros(3)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(LoadError, match="post_layernorm.bias"):
        load(path, "clip_vision")


def pil_rendering(img: np.ndarray, crop: str) -> np.ndarray:
    """The published steps in float64 via PIL: bicubic (antialiased) resize per channel, crop, 8 bit, mean/std."""
    h, w, _ = img.shape
    size = (round(224 / min(h, w) * w), round(224 / min(h, w) * h)) if crop == "center" else (224, 224)
    chans = [np.asarray(Image.fromarray(img[..., c].astype(np.float32), mode="F").resize(size, Image.BICUBIC),
                        dtype=np.float64) for c in range(3)]
    x = np.stack(chans, 0)
    top, left = (x.shape[1] - 224) // 2, (x.shape[2] - 224) // 2
    x = x[:, top:top + 224, left:left + 224]
    x = np.round(np.clip(x * 255.0, 0, 255)) / 255.0
    return (x - MEAN[:, None, None]) / STD[:, None, None]


@pytest.mark.parametrize("shape,crop", [((336, 448), "center"), ((300, 240), "center"), ((336, 448), "none")])
def test_preprocess_matches_a_pil_rendering(shape, crop):
    rng = np.random.default_rng(3)
    img = rng.random((*shape, 3))
    got = preprocess(torch.tensor(img, dtype=torch.float32)[None], crop=crop)[0].double().numpy()
    want = pil_rendering(img, crop)
    assert got.shape == want.shape == (3, 224, 224)
    step = 1 / 255 / STD.min()
    diff = np.abs(got - want)
    assert diff.max() <= step + 1e-4  # at most one 8-bit level, where rounding falls differently
    assert (diff > 1e-4).mean() < 0.02


def test_preprocess_keeps_224_and_rejects_bad_input():
    img = torch.rand(1, 224, 224, 4)  # alpha is dropped
    want = ((img[..., :3] * 255).round() / 255 - torch.tensor(MEAN, dtype=torch.float32)) / torch.tensor(STD, dtype=torch.float32)
    torch.testing.assert_close(preprocess(img), want.movedim(-1, 1))
    with pytest.raises(ValueError, match="crop"):
        preprocess(img, crop="left")
    with pytest.raises(ValueError, match="IMAGE"):
        preprocess(torch.rand(224, 224, 3))
