"""Lazy key conversion into our (original-format) names: every target tensor gets a recipe.

A recipe names its source keys and one operation (copy, concatenate q/k/v along rows, transpose),
so a whole plan can be checked against the model's keys and shapes before any data is read, and each
tensor is materialised only while it is being assigned.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .safetensors_io import TensorInfo, TensorSource

QKV_SPLIT = (
    re.compile(r"^(?P<base>.*\.attention)\.attn\.to_(?P<p>[qkv])\.(?P<w>weight|bias)$"),  # ComfyUI split
    re.compile(r"^(?P<base>.*\.attention)\.to_(?P<p>[qkv])\.(?P<w>weight|bias)$"),  # diffusers
)
DIFFUSERS_OUT = re.compile(r"^(?P<base>.*\.attention)\.to_out\.0\.(?P<w>weight|bias)$")
TEXT_IGNORED = ("text_model.embeddings.position_ids", "logit_scale")


@dataclass(frozen=True)
class Recipe:
    """How to build one target tensor from source tensors."""

    sources: tuple[str, ...]
    op: str = "copy"  # "copy" | "cat" (rows, q;k;v) | "t" (2-D transpose) | "chunk" (rows part[0] of part[1])
    part: tuple[int, int] = (0, 1)


Plan = dict[str, Recipe]


def planned_info(infos: dict[str, TensorInfo], r: Recipe) -> TensorInfo:
    """Dtype and shape of a recipe's result, from the sources' header infos only."""
    first = infos[r.sources[0]]
    if r.op == "cat":
        rows = sum(infos[s].shape[0] for s in r.sources)
        return TensorInfo(first.dtype, (rows,) + first.shape[1:])
    if r.op == "t":
        return TensorInfo(first.dtype, tuple(reversed(first.shape)))
    if r.op == "chunk":
        return TensorInfo(first.dtype, (first.shape[0] // r.part[1],) + tuple(first.shape[1:]))
    return first


def materialise(source: TensorSource, r: Recipe) -> torch.Tensor:
    """Read a recipe's sources and apply its operation."""
    if r.op == "cat":
        return torch.cat([source.get(s) for s in r.sources], dim=0)
    if r.op == "t":
        return source.get(r.sources[0]).t().contiguous()
    if r.op == "chunk":
        i, n = r.part
        return source.get(r.sources[0]).chunk(n, dim=0)[i].contiguous()
    return source.get(r.sources[0])


def strip(keys, prefix: str) -> dict[str, str]:
    """{short name: full key} for keys under a prefix."""
    return {k[len(prefix):]: k for k in keys if k.startswith(prefix)}


def unet_plan(keys, prefix: str, *, stage_b: bool) -> Plan:
    """Stage C/B in original, ComfyUI split-q/k/v or diffusers naming → original names (packed in_proj)."""
    names = strip(keys, prefix)
    plan: Plan = {}
    groups: dict[tuple[str, str], dict[str, str]] = {}
    diffusers = False
    for short, full in names.items():
        m = next((p.match(short) for p in QKV_SPLIT if p.match(short)), None)
        if m:
            groups.setdefault((m["base"], m["w"]), {})[m["p"]] = full
            diffusers |= ".attn." not in short
            continue
        if m := DIFFUSERS_OUT.match(short):
            plan[f"{m['base']}.attn.out_proj.{m['w']}"] = Recipe((full,))
            diffusers = True
            continue
        plan[short] = Recipe((full,))
    for (base, w), parts in groups.items():
        if set(parts) == {"q", "k", "v"}:
            plan[f"{base}.attn.in_proj_{w}"] = Recipe((parts["q"], parts["k"], parts["v"]), "cat")
        else:  # incomplete: keep the pieces under their own names so strict loading names them
            for full in parts.values():
                plan[full[len(prefix):]] = Recipe((full,))
    if stage_b and (diffusers or "clip_mapper.weight" not in plan):
        for w in ("weight", "bias"):
            if (r := plan.pop(f"clip_txt_pooled_mapper.{w}", None)) is not None:
                plan[f"clip_mapper.{w}"] = r
    return plan


def vqgan_plan(keys, prefix: str) -> Plan:
    """Stage A (original or diffusers PaellaVQModel names) → original names."""
    plan = {short: Recipe((full,)) for short, full in strip(keys, prefix).items()}
    if "vquantizer.embedding.weight" in plan and "vquantizer.codebook.weight" not in plan:
        plan["vquantizer.codebook.weight"] = plan.pop("vquantizer.embedding.weight")
    return plan


def plain_plan(keys, prefix: str) -> Plan:
    """Keys copied as they are, prefix removed (effnet, previewer)."""
    return {short: Recipe((full,)) for short, full in strip(keys, prefix).items()}


def text_plan(keys, prefix: str) -> Plan:
    """CLIP text tower → transformers names (`text_model.*`, `text_projection.weight`).

    `prefix` is where `text_model.` starts. ComfyUI's CLIP-G layout puts the tower under
    `clip_g.transformer.` and may keep an OpenCLIP `clip_g.text_projection` stored [in, out] beside it.
    """
    names = strip(keys, prefix)
    plan = {short: Recipe((full,)) for short, full in names.items() if short not in TEXT_IGNORED}
    outer = prefix[: -len("transformer.")] if prefix.endswith("transformer.") else None
    if "text_projection.weight" not in plan and outer is not None and f"{outer}text_projection" in set(keys):
        plan["text_projection.weight"] = Recipe((f"{outer}text_projection",), "t")
    return plan


def vision_plan(keys, prefix: str) -> Plan:
    """CLIP vision tower in transformers names (`vision_model.*`, `visual_projection.weight`) under a prefix
    (none, or ComfyUI's `clip_l_vision.`); older files' `position_ids` buffer is not a weight and is left out.
    A tower with `class_embedding` beside it is in the OpenAI/open_clip layout: `openai_vision_plan`."""
    if prefix + "class_embedding" in set(keys):
        return openai_vision_plan(keys, prefix)
    return {short: Recipe((full,)) for short, full in strip(keys, prefix).items()
            if short != "vision_model.embeddings.position_ids"}


_OPENAI_TOP = {"class_embedding": "embeddings.class_embedding", "conv1.weight": "embeddings.patch_embedding.weight",
               "positional_embedding": "embeddings.position_embedding.weight", "ln_pre.weight": "pre_layrnorm.weight",
               "ln_pre.bias": "pre_layrnorm.bias", "ln_post.weight": "post_layernorm.weight",
               "ln_post.bias": "post_layernorm.bias"}
_OPENAI_BLOCK = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
                 "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
_OPENAI_RES = re.compile(r"^transformer\.resblocks\.(?P<n>\d+)\.(?P<rest>.+?)[._](?P<w>weight|bias)$")


def openai_vision_plan(keys, prefix: str) -> Plan:
    """OpenAI CLIP / open_clip `visual.*` -> transformers names (what transformers' own converter does):
    fused `attn.in_proj_{weight,bias}` split into q/k/v rows, `proj` [width, dim] transposed into
    `visual_projection.weight` [dim, width]. Unknown keys keep their names, so strict loading names them."""
    plan: Plan = {}
    for short, full in strip(keys, prefix).items():
        if short in _OPENAI_TOP:
            plan[f"vision_model.{_OPENAI_TOP[short]}"] = Recipe((full,))
        elif short == "proj":
            plan["visual_projection.weight"] = Recipe((full,), "t")
        elif (m := _OPENAI_RES.match(short)) and m["rest"] == "attn.in_proj":
            for i, p in enumerate("qkv"):
                plan[f"vision_model.encoder.layers.{m['n']}.self_attn.{p}_proj.{m['w']}"] = Recipe((full,), "chunk", (i, 3))
        elif m and m["rest"] in _OPENAI_BLOCK:
            plan[f"vision_model.encoder.layers.{m['n']}.{_OPENAI_BLOCK[m['rest']]}.{m['w']}"] = Recipe((full,))
        else:
            plan[short] = Recipe((full,))
    return plan


def text_outer_extras(keys, prefix: str) -> set[str]:
    """Keys beside a ComfyUI CLIP-G tower that belong to it (so they are not reported as strays)."""
    outer = prefix[: -len("transformer.")] if prefix.endswith("transformer.") else None
    if outer is None:
        return set()
    return {k for k in keys if k in (f"{outer}text_projection", f"{outer}logit_scale")}


class PlannedSource:
    """A TensorSource presenting a plan's target names over another source."""

    def __init__(self, source: TensorSource, plan: Plan, rename: dict[str, str] | None = None) -> None:
        self.name, self._source = source.name, source
        self._plan = {(rename or {}).get(k, k): r for k, r in plan.items()}
        src = source.infos()
        self._infos = {k: planned_info(src, r) for k, r in self._plan.items()}

    def infos(self) -> dict[str, TensorInfo]:
        """Target names with the dtype/shape each will have."""
        return self._infos

    def get(self, key: str) -> torch.Tensor:
        """Materialise one target tensor."""
        return materialise(self._source, self._plan[key])
