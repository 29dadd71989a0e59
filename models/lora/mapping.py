"""Turn a LoRA state dict into patches on our modules, reporting every tensor that is not used."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import nn

from models.lora.alphas import PeftScale, rule_for
from models.lora.names import NameTables, Target
from models.lora.report import LoraReport
from models.lora.units import Unit
from models.patching import LowRankDelta, Patch

UNET, TE = "unet", "text_encoder"

# kohya/OneTrainer prefixes → which model they address. "unet" = whichever diffusion model is patched.
_KOHYA = (("lora_prior_unet_", "stage_c"), ("lora_decoder_unet_", "stage_b"), ("lora_unet_", UNET),
          ("lycoris_", UNET), ("lora_prior_te_", TE), ("lora_te_", TE))
# Dotted prefixes (diffusers, PEFT, ComfyUI). `base_model.model.` is PEFT's raw wrapper and says nothing.
# ComfyUI-trained LoRAs name the text encoder `text_encoders.clip_g.transformer.text_model…`.
_DOTTED = (("base_model.model.", None), ("model.diffusion_model.", UNET), ("diffusion_model.", UNET),
           ("prior.", "stage_c"), ("decoder.", "stage_b"), ("unet.", UNET),
           ("text_encoders.clip_g.transformer.", TE), ("text_encoders.clip_g.", TE), ("clip_g.transformer.", TE),
           ("text_encoder.", TE))
_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)_lora$")


@dataclass
class Models:
    """The modules one LoRA node patches: a diffusion model (Stage C or B) and maybe a text encoder."""

    unet: nn.Module | None
    unet_kind: str  # "stage_c" | "stage_b"
    text_encoder: nn.Module | None = None
    strength_unet: float = 1.0
    strength_te: float = 1.0

    def tables(self) -> dict[str, NameTables]:
        """Name tables of the connected models (built once per application)."""
        out = {}
        if self.unet is not None:
            out[UNET] = NameTables.of(self.unet)
        if self.text_encoder is not None:
            out[TE] = NameTables.of(self.text_encoder, text_encoder=True)
        return out


def _split_name(base: str, kind: str) -> tuple[str | None, str, bool]:
    """(target role or None if it is the other diffusion model, layer name, underscore spelling?)."""
    for prefix, role in _KOHYA:
        if base.startswith(prefix):
            return _role(role, kind), base[len(prefix):], True
    role: str | None = None
    name = base
    changed = True
    while changed:
        changed = False
        for prefix, r in _DOTTED:
            if name.startswith(prefix):
                name, changed = name[len(prefix):], True
                role = r or role
    name = _PROCESSOR.sub(lambda m: "." + ("to_out.0" if m.group(1) == "to_out" else m.group(1)), name)
    if role is None:
        role = TE if name.startswith("text_model.") or name.startswith("text_projection") else UNET
    return _role(role, kind), name, False


def _role(role: str, kind: str) -> str | None:
    if role in (UNET, TE):
        return role
    return UNET if role == kind else None  # a Stage B layer offered to Stage C, or vice versa


def resolve(unit: Unit, models: Models, tables: dict[str, NameTables]) -> tuple[str, Target] | str:
    """(role, target) for one unit, or the reason it cannot be placed."""
    role, name, underscore = _split_name(unit.name, models.unet_kind)
    if role is None:
        other = "Stage B (decoder)" if models.unet_kind == "stage_c" else "Stage C (prior)"
        return f"layer of {other}, but this node patches {models.unet_kind.replace('_', ' ').title()}"
    if role not in tables:
        what = "text encoder" if role == TE else "diffusion model"
        return f"{what} layer, but no {what} is connected"
    t = tables[role]
    target = (t.underscore if underscore else t.dotted).get(name)
    if target is None:
        where = "the text encoder" if role == TE else models.unet_kind.replace("_", " ").title()
        return f"no layer of this name in {where}"
    return role, target


def make_delta(unit: Unit, target: Target, default_scale: float | None = None) -> LowRankDelta | str:
    """The low-rank delta of a unit for `target`, or why its tensors do not fit.

    Scale: the unit's `.alpha`/rank; else `default_scale` (from PEFT/diffusers metadata); else 1.
    """
    t = unit.tensors
    if "down" not in t or "up" not in t:
        return "incomplete LoRA layer (needs both down and up)"
    down, up, mid = t["down"], t["up"], t.get("mid")
    rank = down.shape[0]
    if up.dim() < 2 or up.shape[1] != rank or (mid is not None and mid.shape[:2] != (rank, up.shape[1])):
        return f"inconsistent ranks: down {tuple(down.shape)}, up {tuple(up.shape)}"
    if up.dim() > 2 and any(s != 1 for s in up.shape[2:]):
        return f"conv LoRA with a {tuple(up.shape[2:])} up kernel is not supported"
    kernel = tuple(mid.shape[2:]) if mid is not None else ()
    cols = math.prod(down.shape[1:]) * math.prod(kernel)
    want = target.shape
    if up.shape[0] != want[0] or cols != math.prod(want[1:]):
        return (f"shape mismatch: LoRA gives {up.shape[0]}×{cols}, layer {target.key} is {list(want)} "
                "(LoRA for another model size, e.g. lite vs full?)")
    alpha = t.get("alpha")
    if alpha is not None and alpha.numel() == 1:
        scale = float(alpha.float().item()) / rank
    else:
        scale = 1.0 if default_scale is None else default_scale
    dora = t.get("dora_scale")
    if dora is not None and dora.numel() not in (want[0], math.prod(want[1:2])):
        return f"dora_scale of shape {tuple(dora.shape)} fits neither axis of {list(want)}"
    return LowRankDelta(up=up, down=down, scale=scale, mid=mid, dora_scale=dora,
                        row_start=target.row_start, row_stop=target.row_stop)


def unit_patches(units: list[Unit], models: Models, report: LoraReport, source: str,
                 scales: dict[str, PeftScale] | None = None) -> dict[str, list[Patch]]:
    """Patches per role ("unet", "text_encoder") for named (kohya/diffusers/PEFT) units."""
    tables = models.tables()
    no_alpha = 0
    out: dict[str, list[Patch]] = {UNET: [], TE: []}
    for unit in units:
        placed = resolve(unit, models, tables)
        if isinstance(placed, str):
            report.add_unmatched(unit.keys, placed)
            continue
        role, target = placed
        found = rule_for(scales or {}, unit.name) if "alpha" not in unit.tensors else None
        rank = unit.tensors["down"].shape[0] if "down" in unit.tensors else 1
        delta = make_delta(unit, target, found[0].scale(found[1], rank) if found else None)
        if isinstance(delta, str):
            report.add_unmatched(unit.keys, delta)
            continue
        strength = models.strength_unet if role == UNET else models.strength_te
        out[role].append(Patch(target.key, delta, strength, source))
        report.count(models.unet_kind if role == UNET else TE, len(unit.keys))
        no_alpha += "alpha" not in unit.tensors and found is None
    if no_alpha:
        report.info.append(f"{no_alpha} layer(s) carry no alpha: scale 1 (alpha = rank), the diffusers/PEFT "
                           "convention")
    return out


def nonfinite(units: list[Unit]) -> list[str]:
    """Keys of tensors with NaN/inf (a broken LoRA would silently ruin every image)."""
    return [k for u in units for k, v in zip(u.keys, u.tensors.values()) if v.is_floating_point()
            and not v.is_meta and not bool(torch.isfinite(v).all())]
