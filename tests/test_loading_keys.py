"""Full-size key sets (reference lists, meta-built networks) through detection and every key converter."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.convert_keys import stage_a_original_to_diffusers, unet_original_to_diffusers
from models.loading import rules
from models.loading.convert import planned_info
from models.loading.networks import build_on_meta, match_preset, network_spec
from models.loading.safetensors_io import TensorInfo

KEYS = Path(__file__).parent / "data" / "keys"
# reference list -> (kind, preset, layout)
LISTS = {
    "stage_c": ("stage_c", "full", "original"), "stage_c_lite": ("stage_c", "lite", "original"),
    "stage_b": ("stage_b", "full", "original"), "stage_b_lite": ("stage_b", "lite", "original"),
    "stage_a": ("stage_a", "full", "original"), "effnet_encoder": ("effnet", "full", "original"),
    "previewer": ("previewer", "full", "original"), "clip_text_bigg": ("text_encoder", "bigg", "transformers"),
    "diffusers_prior": ("stage_c", "full", "diffusers"), "diffusers_prior_lite": ("stage_c", "lite", "diffusers"),
    "diffusers_decoder": ("stage_b", "full", "diffusers"), "diffusers_decoder_lite": ("stage_b", "lite", "diffusers"),
    "diffusers_vqgan": ("stage_a", "full", "diffusers"),
}
ORIGINAL_OF = {"diffusers_prior": "stage_c", "diffusers_prior_lite": "stage_c_lite", "diffusers_decoder": "stage_b",
               "diffusers_decoder_lite": "stage_b_lite", "diffusers_vqgan": "stage_a"}


def reference(name: str) -> tuple[dict[str, tuple[int, ...]], dict]:
    """(key -> shape, whole json) of a reference list."""
    data = json.loads((KEYS / f"{name}.json").read_text())
    return {k: tuple(v) for k, v in data["params"].items()}, data


def infos_of(shapes: dict[str, tuple[int, ...]], dtype=torch.bfloat16) -> dict[str, TensorInfo]:
    return {k: TensorInfo(torch.int64 if k.endswith("num_batches_tracked") else dtype, s) for k, s in shapes.items()}


def converted(found: rules.Found, infos: dict[str, TensorInfo]) -> dict[str, tuple[int, ...]]:
    """Run a component's conversion plan on header infos only."""
    plan = rules.plan_for(found, infos)
    return {k: tuple(planned_info(infos, r).shape) for k, r in plan.items()}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_detects_every_reference_list(name):
    shapes, data = reference(name)
    infos = infos_of(shapes)
    found = rules.find_components(infos)
    kind, preset, layout = LISTS[name]
    assert [(f.kind, f.prefix, f.layout) for f in found] == [(kind, "", layout)]
    canon = converted(found[0], infos)
    assert rules.count_params(infos_of(canon)) == data["total_params"]
    assert rules.guess_preset(kind, infos_of(canon)) == preset
    assert match_preset(network_spec(kind), infos_of(canon)) == preset  # exact keys and shapes of a meta build
    assert rules.dtype_summary(infos) == "bfloat16"


@pytest.mark.parametrize("name", sorted(ORIGINAL_OF))
def test_diffusers_lists_convert_to_original_lists(name):
    """Our lazy plan (diffusers → original) reproduces the original key list exactly, shapes included."""
    shapes, _ = reference(name)
    want, _ = reference(ORIGINAL_OF[name])
    (found,) = rules.find_components(shapes)
    assert converted(found, infos_of(shapes)) == want


@pytest.mark.parametrize("name", sorted(ORIGINAL_OF))
def test_meta_built_networks_convert_to_diffusers_lists(name):
    """Full-size network on meta → original keys → diffusers converter == the diffusers reference list."""
    kind, preset, _ = LISTS[name]
    spec = network_spec(kind)
    state = build_on_meta(spec, spec.presets[preset]).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == reference(ORIGINAL_OF[name])[0]
    conv = unet_original_to_diffusers(state) if kind != "stage_a" else stage_a_original_to_diffusers(state)
    assert {k: tuple(v.shape) for k, v in conv.items()} == reference(name)[0]


def test_meta_built_text_encoder_matches_transformers_list():
    spec = network_spec("text_encoder")
    state = build_on_meta(spec, spec.presets["bigg"]).state_dict()
    assert {k.removeprefix(spec.key_prefix): tuple(v.shape) for k, v in state.items()} == reference("clip_text_bigg")[0]


def split_shapes(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """ComfyUI's split q/k/v layout of an original key list."""
    out = {}
    for k, s in shapes.items():
        if ".attention.attn.in_proj_" in k:
            base, w = k.split(".in_proj_")
            for p in ("to_q", "to_k", "to_v"):
                out[f"{base}.{p}.{w}"] = (s[0] // 3,) + s[1:]
        else:
            out[k] = s
    return out


@pytest.mark.parametrize("unet,prefix,split", [("stage_c", "model.diffusion_model.", True),
                                               ("stage_c", "diffusion_model.", False),
                                               ("stage_c_lite", "prior.", True),
                                               ("stage_b", "model.diffusion_model.", True),
                                               ("stage_b_lite", "decoder.", False)])
def test_all_in_one_lists_convert_to_original_lists(unet, prefix, split):
    """A full-size ComfyUI all-in-one key set splits back into the exact original lists."""
    u, _ = reference(unet)
    clip, _ = reference("clip_text_bigg")
    parts = {prefix + k: s for k, s in (split_shapes(u) if split else u).items()}
    parts.update({"text_encoder.clip_g.transformer." + k: s for k, s in clip.items() if k != "text_projection.weight"})
    parts["text_encoder.clip_g.text_projection"] = (1280, 1280)
    parts["text_encoder.clip_g.logit_scale"] = ()
    if unet.startswith("stage_c"):
        parts.update({"vae.encoder." + k: s for k, s in reference("effnet_encoder")[0].items()})
        parts.update({"vae.previewer." + k: s for k, s in reference("previewer")[0].items()})
        wanted = {"stage_c": u, "effnet": reference("effnet_encoder")[0], "previewer": reference("previewer")[0]}
    else:
        parts.update({"vae." + k: s for k, s in reference("stage_a")[0].items()})
        wanted = {"stage_b": u, "stage_a": reference("stage_a")[0]}
    parts["clip_l_vision.vision_model.post_layernorm.weight"] = (1024,)  # optional extra, not ours
    wanted["text_encoder"] = clip
    infos = infos_of(parts)
    found = rules.find_components(infos)
    assert {f.kind for f in found} == set(wanted)
    owners = rules.owned_keys(found, infos)
    assert set(infos) - set().union(*owners.values()) == {"clip_l_vision.vision_model.post_layernorm.weight"}
    for f in found:
        assert converted(f, {k: infos[k] for k in owners[f]}) == wanted[f.kind], f.kind
