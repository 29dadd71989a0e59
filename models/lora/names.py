"""Lookup tables from every LoRA naming scheme's layer name to one of our parameters.

Our parameters use the original (official) names; attention is a packed MultiheadAttention
(`…attention.attn.in_proj_weight`, rows q|k|v). Trainers name the same layers in other ways
(split `to_q/to_k/to_v`, diffusers `attention.to_q` / `to_out.0`, kohya underscores), so each
table entry says which parameter and which rows of it a layer name stands for.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Target:
    """Rows [row_start:row_stop] of parameter `key` (full name in the patched module)."""

    key: str
    shape: tuple[int, ...]  # shape of the covered part (rows sliced)
    row_start: int = 0
    row_stop: int | None = None


def _own_param(module: nn.Module, name: str) -> torch.Tensor | None:
    p = module._parameters.get(name)
    return p if p is not None and p.dim() >= 2 else None


def _attention_entries(name: str, packed: torch.Tensor, out_proj: torch.Tensor | None) -> dict[str, Target]:
    """Split-q/k/v aliases for a packed MultiheadAttention at module path `name`."""
    key = f"{name}.in_proj_weight"
    c = packed.shape[0] // 3
    rest = tuple(packed.shape[1:])
    entries = {name: Target(key, tuple(packed.shape))}
    parents = [name]
    if name.endswith(".attn"):  # diffusers drops the `.attn` level: `attention.to_q`
        parents.append(name[: -len(".attn")])
    for parent in parents:
        for i, part in enumerate(("to_q", "to_k", "to_v")):
            entries[f"{parent}.{part}"] = Target(key, (c, *rest), i * c, (i + 1) * c)
        if out_proj is not None:  # `{name}.out_proj` itself is a Linear and has its own entry
            entries[f"{parent}.to_out.0"] = Target(f"{name}.out_proj.weight", tuple(out_proj.shape))
    return entries


def dotted_table(module: nn.Module, prefix: str = "") -> dict[str, Target]:
    """Layer name (dotted, without `prefix`) → target, for every matrix/conv weight in `module`."""
    table: dict[str, Target] = {}
    for name, sub in module.named_modules():
        full = f"{prefix}{name}" if name else prefix.rstrip(".")
        weight = _own_param(sub, "weight")
        if weight is not None:
            table[name] = Target(f"{full}.weight" if full else "weight", tuple(weight.shape))
        packed = _own_param(sub, "in_proj_weight")
        if packed is not None:
            out = getattr(sub, "out_proj", None)
            out_w = _own_param(out, "weight") if isinstance(out, nn.Module) else None
            for alias, t in _attention_entries(full, packed, out_w).items():
                table.setdefault(alias[len(prefix):] if prefix else alias, t)
    if "clip_mapper" in table:  # Stage B: diffusers renamed clip_mapper → clip_txt_pooled_mapper
        table.setdefault("clip_txt_pooled_mapper", table["clip_mapper"])
    return table


def underscore_table(dotted: dict[str, Target]) -> dict[str, Target]:
    """kohya-style names: the dotted path with every `.` turned into `_`."""
    return {name.replace(".", "_"): t for name, t in dotted.items()}


def text_encoder_root(module: nn.Module) -> tuple[nn.Module, str]:
    """The transformers CLIP model inside our TextEncoder (`.clip`) and its parameter-name prefix."""
    inner = getattr(module, "clip", None)
    if isinstance(inner, nn.Module):
        return inner, "clip."
    return module, ""


@dataclass(frozen=True)
class NameTables:
    """Both spellings for one patchable module, plus where its parameters live."""

    dotted: dict[str, Target]
    underscore: dict[str, Target]

    @classmethod
    def of(cls, module: nn.Module, *, text_encoder: bool = False) -> "NameTables":
        """Tables for a diffusion UNet (StageC/StageB) or, with text_encoder=True, for our TextEncoder."""
        if text_encoder:
            root, prefix = text_encoder_root(module)
            dotted = {name: t for name, t in dotted_table(root, prefix).items()}
        else:
            dotted = dotted_table(module)
        return cls(dotted, underscore_table(dotted))


def official_attn_targets(module: nn.Module) -> list[Target]:
    """Targets of the official LoRA (`module_filters=['.attn']`), in `named_modules()` order.

    The official code parametrizes every module whose name contains `.attn` and that owns a
    `weight` or packed `in_proj_weight`: per attention block the MultiheadAttention (packed q|k|v)
    and its `out_proj`. Our module tree registers blocks in the official order (checked by a test
    against the official key list), so this order is the official one.
    """
    targets = []
    for name, sub in module.named_modules():
        if ".attn" not in name:
            continue
        for pname in ("weight", "in_proj_weight"):
            p = _own_param(sub, pname)
            if p is not None:
                targets.append(Target(f"{name}.{pname}", tuple(p.shape)))
                break
    return targets
