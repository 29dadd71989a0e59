"""Our network classes seen from the loader: constructors, presets, configs from config.json, shapes.

The loader speaks canonical key names (original format; transformers names for the text encoder).
`key_prefix` is what the module adds in front of them (TextEncoder holds the CLIP model as `.clip`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .errors import LoadError, name_keys
from .safetensors_io import TensorInfo

KIND_TITLES = {"stage_c": "Stage C", "stage_b": "Stage B", "stage_a": "Stage A", "effnet": "EfficientNet encoder",
               "previewer": "Previewer", "text_encoder": "CLIP text encoder", "clip_vision": "CLIP vision encoder",
               "controlnet": "ControlNet"}
KIND_ALIASES = {"effnet_encoder": "effnet", "prior": "stage_c", "decoder": "stage_b", "vqgan": "stage_a",
                "clip": "text_encoder", "text": "text_encoder"}


@dataclass(frozen=True)
class NetworkSpec:
    """How to build one kind of network and which named sizes exist."""

    kind: str
    build: Callable[[Any], nn.Module]
    presets: Mapping[str, Any]
    key_prefix: str = ""


def canonical_kind(kind: str) -> str:
    """Accept a few aliases ('effnet_encoder', 'prior', …); reject unknown kinds clearly."""
    k = KIND_ALIASES.get(kind, kind)
    if k not in KIND_TITLES:
        raise LoadError(f"unknown network kind {kind!r}; expected one of {', '.join(KIND_TITLES)}")
    return k


def network_spec(kind: str) -> NetworkSpec:
    """The class and presets for a kind (imported lazily: the text encoder pulls in transformers)."""
    kind = canonical_kind(kind)
    if kind == "stage_c":
        from models.stage_c import STAGE_C_PRESETS, StageC
        return NetworkSpec(kind, StageC, STAGE_C_PRESETS)
    if kind == "stage_b":
        from models.stage_b import STAGE_B_PRESETS, StageB
        return NetworkSpec(kind, StageB, STAGE_B_PRESETS)
    if kind == "stage_a":
        from models.stage_a import STAGE_A_PRESETS, StageA
        return NetworkSpec(kind, StageA, STAGE_A_PRESETS)
    if kind == "effnet":
        from models.effnet import EFFNET_PRESETS, EffNetEncoder
        return NetworkSpec(kind, EffNetEncoder, EFFNET_PRESETS)
    if kind == "previewer":
        from models.previewer import PREVIEWER_PRESETS, Previewer
        return NetworkSpec(kind, Previewer, PREVIEWER_PRESETS)
    if kind == "clip_vision":
        from models.clip_vision import CLIP_VISION_PRESETS, ClipVision
        return NetworkSpec(kind, ClipVision, CLIP_VISION_PRESETS, key_prefix="clip.")
    if kind == "controlnet":
        from models.controlnet import CONTROLNET_PRESETS, ControlNet
        return NetworkSpec(kind, ControlNet, CONTROLNET_PRESETS)
    from models.text_encoder import TEXT_ENCODER_PRESETS, TextEncoder
    return NetworkSpec(kind, TextEncoder, TEXT_ENCODER_PRESETS, key_prefix="clip.")


def build_on_meta(spec: NetworkSpec, config: Any) -> nn.Module:
    """Construct without allocating or initialising any weights."""
    with torch.device("meta"):
        return spec.build(config)


def expected_shapes(spec: NetworkSpec, config: Any) -> dict[str, tuple[int, ...]]:
    """Canonical key -> shape of a network built with `config` (persistent state only)."""
    model = build_on_meta(spec, config)
    n = len(spec.key_prefix)
    return {k[n:]: tuple(v.shape) for k, v in model.state_dict().items()}


def shape_problems(expected: dict[str, tuple[int, ...]], infos: dict[str, TensorInfo]) -> list[str]:
    """Human-readable differences between what a network needs and what the file has (empty if none)."""
    missing = set(expected) - set(infos)
    unexpected = set(infos) - set(expected)
    wrong = sorted(k for k in set(expected) & set(infos) if tuple(infos[k].shape) != expected[k])
    out = []
    if missing:
        out.append(f"missing keys: {name_keys(missing)}")
    if unexpected:
        out.append(f"unexpected keys: {name_keys(unexpected)}")
    if wrong:
        shown = "; ".join(f"{k} is {list(infos[k].shape)}, expected {list(expected[k])}" for k in wrong[:3])
        out.append(f"wrong shapes ({len(wrong)}): {shown}")
    return out


def _quick_fit(kind: str, cfg: Any, infos: dict[str, TensorInfo]) -> bool:
    """Cheap shape checks that rule a preset out before building it on meta."""
    def shape(key: str) -> tuple[int, ...] | None:
        info = infos.get(key)
        return tuple(info.shape) if info is not None else None

    if kind == "stage_c":
        return shape("clip_txt_mapper.weight") == (cfg.c_cond, cfg.c_clip_text)
    if kind == "stage_b":
        return (shape("clip_mapper.weight") == (cfg.c_cond * cfg.c_clip_seq, cfg.c_clip)
                and (shape("embedding.1.weight") or (0,))[0] == cfg.c_hidden[0])
    if kind == "stage_a":
        return shape("vquantizer.codebook.weight") == (cfg.codebook_size, cfg.c_latent)
    if kind == "effnet":
        return (shape("mapper.0.weight") or (0, 0))[:2] == (cfg.c_latent, cfg.head)
    if kind == "previewer":
        return (shape("blocks.0.weight") or (0,))[0] == cfg.c_hidden
    if kind == "text_encoder":
        return shape("text_model.embeddings.token_embedding.weight") == (cfg.vocab_size, cfg.hidden_size)
    if kind == "clip_vision":
        return shape("visual_projection.weight") == (cfg.projection_dim, cfg.hidden_size)
    if kind == "controlnet":
        stem = shape("backbone.0.0.weight") if cfg.bottleneck == "effnet" else shape("backbone.0.weight")
        return ((stem or (0, 0))[1] == cfg.c_in and (shape("projections.0.2.weight") or (0,))[0] == cfg.c_proj
                and f"projections.{len(cfg.proj_blocks) - 1}.0.weight" in infos
                and f"projections.{len(cfg.proj_blocks)}.0.weight" not in infos)
    return True


def match_preset(spec: NetworkSpec, infos: dict[str, TensorInfo], first: str | None = None) -> str | None:
    """The named size whose keys and shapes are exactly the file's (the likely one is tried first)."""
    order = sorted(spec.presets, key=lambda p: (p != first, p))
    for name in order:
        cfg = spec.presets[name]
        if _quick_fit(spec.kind, cfg, infos) and not shape_problems(expected_shapes(spec, cfg), infos):
            return name
    return None


def closest_preset(spec: NetworkSpec, infos: dict[str, TensorInfo], first: str | None = None) -> str | None:
    """The preset a damaged file most likely was: the guess, else the one with the most matching keys."""
    if first is not None:
        return first
    fits = [p for p, cfg in spec.presets.items() if _quick_fit(spec.kind, cfg, infos)]
    if len(fits) == 1:
        return fits[0]
    scored = [(len(set(expected_shapes(spec, spec.presets[p])) & set(infos)), p) for p in (fits or spec.presets)]
    return max(scored)[1] if scored else None


def describe_size(kind: str, infos: dict[str, TensorInfo]) -> str | None:
    """What a network of no loadable size is, when its shapes say so (a CLIP ViT-H/14 tower, …), else None."""
    if kind == "clip_vision":
        from models.clip_vision import describe_tower
        return describe_tower(infos)
    return None


def config_from_json(kind: str, d: Mapping) -> Any:
    """A diffusers/transformers config.json (either diffusers spelling) -> our config dataclass."""
    try:
        if kind in ("stage_c", "stage_b"):
            from models.convert_keys import unet_config_from_diffusers
            cfg = unet_config_from_diffusers(d)
            got = "stage_b" if type(cfg).__name__ == "StageBConfig" else "stage_c"
            if got != kind:
                raise LoadError(f"config.json describes a {KIND_TITLES[got]} network, not {KIND_TITLES[kind]}")
            return cfg
        if kind == "stage_a":
            from models.stage_a import StageAConfig
            return StageAConfig(levels=d.get("levels", 2), bottleneck_blocks=d.get("bottleneck_blocks", 12),
                                c_hidden=d.get("embed_dim", 384), c_latent=d.get("latent_channels", 4),
                                codebook_size=d.get("num_vq_embeddings", 8192))  # scale stays 0.43 (spec §1.4)
        if kind == "text_encoder":
            from models.text_encoder import TextEncoderConfig
            src = d.get("text_config", d)
            fields = {f.name for f in dataclasses.fields(TextEncoderConfig)}
            return TextEncoderConfig(**{k: v for k, v in src.items() if k in fields})
        if kind == "clip_vision":
            from models.clip_vision import ClipVisionConfig
            src = d.get("vision_config", d)
            fields = {f.name for f in dataclasses.fields(ClipVisionConfig)}
            return ClipVisionConfig(**{k: v for k, v in src.items() if k in fields})
    except (KeyError, TypeError, ValueError) as e:
        raise LoadError(f"config.json could not be read as a {KIND_TITLES[kind]} config ({e!r})") from None
    return None
