"""Image variation, issue 12 §1: the vision tower in every layout, other sizes refused by name, and the
official preprocessing against a float64 rendering of Stability's clip_preprocess (torchvision semantics)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.clip_vision import CLIP_MEAN, CLIP_STD, image_tokens, preprocess, preprocess_official
from models.loading import LoadError, detect, load
from tests.test_clip_vision import tiny_reference

# Stability's train/train_c.py clip_preprocess: Normalize(mean=..., std=...), written out here.
OFFICIAL_MEAN = (0.48145466, 0.4578275, 0.40821073)
OFFICIAL_STD = (0.26862954, 0.26130258, 0.27577711)


def openai_layout(hf: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """transformers names -> OpenAI CLIP `visual.*` names, written plainly: fused q/k/v rows, proj [width, dim]."""
    v = "vision_model."
    out = {"visual.class_embedding": hf[v + "embeddings.class_embedding"],
           "visual.conv1.weight": hf[v + "embeddings.patch_embedding.weight"],
           "visual.positional_embedding": hf[v + "embeddings.position_embedding.weight"],
           "visual.ln_pre.weight": hf[v + "pre_layrnorm.weight"], "visual.ln_pre.bias": hf[v + "pre_layrnorm.bias"],
           "visual.ln_post.weight": hf[v + "post_layernorm.weight"], "visual.ln_post.bias": hf[v + "post_layernorm.bias"],
           "visual.proj": hf["visual_projection.weight"].t()}
    for n in range(layers):
        src, dst = f"{v}encoder.layers.{n}.", f"visual.transformer.resblocks.{n}."
        for w in ("weight", "bias"):
            out[dst + f"attn.in_proj_{w}"] = torch.cat([hf[src + f"self_attn.{p}_proj.{w}"] for p in "qkv"])
            out[dst + f"attn.out_proj.{w}"] = hf[src + f"self_attn.out_proj.{w}"]
            out[dst + f"ln_1.{w}"] = hf[src + f"layer_norm1.{w}"]
            out[dst + f"ln_2.{w}"] = hf[src + f"layer_norm2.{w}"]
            out[dst + f"mlp.c_fc.{w}"] = hf[src + f"mlp.fc1.{w}"]
            out[dst + f"mlp.c_proj.{w}"] = hf[src + f"mlp.fc2.{w}"]
    # A whole OpenAI CLIP file also holds the text tower: not ours to load, and no obstacle.
    out.update({"token_embedding.weight": torch.zeros(10, 8), "ln_final.weight": torch.ones(8),
                "logit_scale": torch.tensor(4.6)})
    return {k: t.contiguous() for k, t in out.items()}


@pytest.mark.parametrize("layout", ["transformers", "comfy_all_in_one", "openai"])
def test_every_layout_loads_strictly_and_equals_transformers(tmp_path, layout):
    ref = tiny_reference(seed=5)
    hf = {k: v.contiguous() for k, v in ref.state_dict().items()}
    state = {"transformers": hf, "comfy_all_in_one": {"clip_l_vision." + k: v for k, v in hf.items()},
             "openai": openai_layout(hf, layers=2)}[layout]
    path = tmp_path / "tower.safetensors"
    save_file(state, str(path))
    (comp,) = [c for c in detect(path).components if c.kind == "clip_vision"]
    assert comp.preset == "tiny"
    tower = load(path, "clip_vision", dtype="float32")
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = ref(pixel_values=pixels)
        got, last, _ = tower(pixels)
    torch.testing.assert_close(got, want.image_embeds, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last, want.last_hidden_state, rtol=1e-5, atol=1e-5)


def test_openai_layout_with_a_stray_block_key_is_refused_naming_it(tmp_path):
    state = openai_layout({k: v.contiguous() for k, v in tiny_reference().state_dict().items()}, layers=2)
    state["visual.transformer.resblocks.1.attn.extra_weight"] = torch.zeros(3)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(LoadError, match="extra_weight"):
        load(path, "clip_vision")


# (name, width, patch, positions, projection dim, layers): the identifying shapes of real CLIP towers.
OTHER_SIZES = [("ViT-H/14", 1280, 14, 257, 1024, 32), ("ViT-bigG/14", 1664, 14, 257, 1280, 48),
               ("ViT-B/16", 768, 16, 197, 512, 12), ("ViT-L/14@336px", 1024, 14, 577, 768, 24)]


def skeleton(width: int, patch: int, positions: int, dim: int, layers: int, openai: bool) -> dict:
    """The shape-bearing keys of a real tower (float16 zeros; the 1-D per-layer norms give the depth)."""
    z = lambda *s: torch.zeros(*s, dtype=torch.float16)  # noqa: E731
    if openai:
        state = {"visual.conv1.weight": z(width, 3, patch, patch), "visual.class_embedding": z(width),
                 "visual.positional_embedding": z(positions, width), "visual.ln_post.weight": z(width),
                 "visual.proj": z(width, dim)}
        state.update({f"visual.transformer.resblocks.{n}.ln_1.weight": z(width) for n in range(layers)})
        return state
    state = {"vision_model.embeddings.patch_embedding.weight": z(width, 3, patch, patch),
             "vision_model.embeddings.position_embedding.weight": z(positions, width),
             "vision_model.post_layernorm.weight": z(width), "visual_projection.weight": z(dim, width)}
    state.update({f"vision_model.encoder.layers.{n}.layer_norm1.weight": z(width) for n in range(layers)})
    return state


@pytest.mark.parametrize("openai", [False, True], ids=["transformers", "openai"])
@pytest.mark.parametrize("name,width,patch,positions,dim,layers", OTHER_SIZES, ids=[s[0] for s in OTHER_SIZES])
def test_other_clip_sizes_are_refused_by_name(tmp_path, openai, name, width, patch, positions, dim, layers):
    path = tmp_path / "other.safetensors"
    save_file(skeleton(width, patch, positions, dim, layers, openai), str(path))
    with pytest.raises(LoadError) as err:
        load(path, "clip_vision")
    assert f"a CLIP {name} vision tower; Stable Cascade needs ViT-L/14" in str(err.value)
    (comp,) = detect(path).components
    assert comp.kind == "clip_vision" and comp.preset is None


# -- preprocessing ---------------------------------------------------------------------------------
def aa_bicubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] float64 weights of an antialiased bicubic resize (Keys a=-0.5, support widened by the
    downscale factor, normalised per output; half-pixel centres): what PIL and torch's antialias path do."""
    def cubic(x):
        x, a = abs(x), -0.5
        return ((a + 2) * x - (a + 3)) * x * x + 1 if x < 1 else (((x - 5) * x + 8) * x - 4) * a if x < 2 else 0.0

    scale = n_in / n_out
    stretch = max(scale, 1.0)
    out = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = scale * (i + 0.5)
        lo, hi = max(int(centre - 2 * stretch + 0.5), 0), min(int(centre + 2 * stretch + 0.5), n_in)
        w = np.array([cubic((j - centre + 0.5) / stretch) for j in range(lo, hi)])
        out[i, lo:hi] = w / w.sum()
    return out


def official_rendering(img: np.ndarray) -> np.ndarray:
    """Stability's clip_preprocess in float64, torchvision semantics written out: Resize(224) keeps the aspect
    with the long side int()-truncated, no clamp; CenterCrop offsets round((d-224)/2); then mean/std."""
    h, w, _ = img.shape
    if h <= w:
        oh, ow = 224, int(224 * w / h)
    else:
        oh, ow = int(224 * h / w), 224
    x = np.moveaxis(img, -1, 0)
    if (oh, ow) != (h, w):
        x = aa_bicubic_weights(h, oh) @ x @ aa_bicubic_weights(w, ow).T  # separable: rows, then columns
    top, left = int(round((oh - 224) / 2.0)), int(round((ow - 224) / 2.0))
    x = x[:, top:top + 224, left:left + 224]
    return (x - np.array(OFFICIAL_MEAN)[:, None, None]) / np.array(OFFICIAL_STD)[:, None, None]


def test_constants_are_the_official_ones():
    assert CLIP_MEAN == OFFICIAL_MEAN and CLIP_STD == OFFICIAL_STD


@pytest.mark.parametrize("shape", [(336, 451), (451, 300), (224, 227), (160, 200), (600, 600)])
def test_official_preprocessing_matches_a_float64_rendering(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.random((*shape, 3))
    got = preprocess_official(torch.tensor(img, dtype=torch.float32)[None])[0].double().numpy()
    want = official_rendering(img)
    assert got.shape == want.shape == (3, 224, 224)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)  # float32 rounding; one 8-bit level is 1.5e-2


def test_official_and_comfy_preprocessing_differ_where_documented():
    # 224x227: no resize; the official crop starts at round(1.5) = 2, ComfyUI's at 3 // 2 = 1.
    img = torch.rand(1, 224, 227, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(preprocess_official(img)[..., :], preprocess_official(img[:, :, 2:226]))
    comfy_unquantised = preprocess(img)  # ComfyUI: crop at 1 and 8-bit rounding
    want = preprocess(img[:, :, 1:225])
    torch.testing.assert_close(comfy_unquantised, want)
    assert not torch.allclose(preprocess_official(img), comfy_unquantised)
    # No clamp and no 8-bit rounding officially: a hard edge overshoots [0, 1] after bicubic resizing.
    edge = torch.zeros(1, 448, 448, 3)
    edge[:, :, 224:] = 1.0
    raw = preprocess_official(edge) * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    assert raw.max() > 1.0 + 1e-3 and raw.min() < -1e-3
    levels = (raw * 255).clamp(0, 255)
    assert not torch.allclose(levels, levels.round(), atol=1e-3)


def test_image_tokens_scale_stack_and_broadcast():
    a, b = torch.randn(1, 1, 768), torch.randn(2, 1, 768)
    out = image_tokens([(a, 0.5), (b, -2.0)])
    assert out.shape == (2, 2, 768)
    torch.testing.assert_close(out[:, 0], (a[:, 0] * 0.5).expand(2, -1))
    torch.testing.assert_close(out[:, 1], b[:, 0] * -2.0)
    with pytest.raises(ValueError, match="disagree"):
        image_tokens([(torch.randn(2, 1, 768), 1.0), (torch.randn(3, 1, 768), 1.0)])
    with pytest.raises(ValueError, match="no image"):
        image_tokens([])
