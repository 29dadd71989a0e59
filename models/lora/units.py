"""Group a LoRA file's tensors into per-layer units (down, up, alpha, …), whatever the spelling."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

# (file-key suffix, role). Longest first so `.lora_down.weight` wins over `.down.weight`.
_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".lora_down.weight", "down"),  # kohya / LyCORIS LoCon
    (".lora_up.weight", "up"),
    (".lora_mid.weight", "mid"),
    (".lora_A.default.weight", "down"),  # PEFT saved with adapter name
    (".lora_B.default.weight", "up"),
    (".lora_A.weight", "down"),  # PEFT / diffusers
    (".lora_B.weight", "up"),
    (".lora.down.weight", "down"),  # older diffusers LoRACompatible layers
    (".lora.up.weight", "up"),
    (".lora_magnitude_vector.weight", "dora_scale"),  # PEFT DoRA (older saves keep `.weight`)
    (".lora_magnitude_vector", "dora_scale"),
    (".dora_scale", "dora_scale"),  # LyCORIS / kohya DoRA
    (".alpha", "alpha"),
    (".down.weight", "down"),  # diffusers attention processors: `processor.to_q_lora.down.weight`
    (".up.weight", "up"),
    (".lora_down", "down"),  # official StableCascade: `weights.{i}.lora_down`
    (".lora_up", "up"),
)

# Adapter kinds we recognise but do not implement: reported by name rather than as "unknown".
_UNSUPPORTED = (
    (re.compile(r"\.hada_(w1|w2|t1|t2)_(a|b)$"), "LoHa (hada_*) weights are not supported"),
    (re.compile(r"\.lokr_(w1|w2|t2)(_a|_b)?$"), "LoKr (lokr_*) weights are not supported"),
    (re.compile(r"\.(diff|diff_b)$"), "full weight-difference ('diff') patches are not supported"),
    (re.compile(r"\.(bias|lora_B\.bias|lora_up\.bias)$"), "bias patches are not supported"),
    (re.compile(r"^bundle_emb\."), "OneTrainer embedding (textual inversion) bundled in the LoRA is not applied"),
    (re.compile(r"\.(w_norm|b_norm)$"), "norm-layer patches are not supported"),
)


@dataclass
class Unit:
    """One layer's tensors in the file: roles down/up/alpha/mid/dora_scale → tensor."""

    name: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)


@dataclass
class Grouped:
    """A file split into layer units, plus keys that belong to no unit (with the reason)."""

    units: dict[str, Unit]
    leftover: list[tuple[str, str]]  # (file key, why it is not a LoRA layer tensor)
    spelling: set[str]  # which suffix families occurred, for the report's format name


_FAMILY = {".lora_down.weight": "kohya", ".lora_up.weight": "kohya", ".lora_A.weight": "peft",
           ".lora_B.weight": "peft", ".lora.down.weight": "diffusers", ".lora.up.weight": "diffusers",
           ".down.weight": "diffusers-processor", ".up.weight": "diffusers-processor",
           ".lora_down": "official", ".lora_up": "official"}


def group_units(state: dict[str, torch.Tensor]) -> Grouped:
    """Split file keys into units by their role suffix; everything else goes to `leftover`."""
    units: dict[str, Unit] = {}
    leftover: list[tuple[str, str]] = []
    spelling: set[str] = set()
    for key, tensor in state.items():
        for suffix, role in _SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                base = key[: -len(suffix)]
                unit = units.setdefault(base, Unit(base))
                if role in unit.tensors:
                    leftover.append((key, f"duplicate {role} tensor for layer {base!r}"))
                    break
                unit.tensors[role] = tensor
                unit.keys.append(key)
                if suffix in _FAMILY:
                    spelling.add(_FAMILY[suffix])
                break
        else:
            leftover.append((key, _unknown_reason(key)))
    return Grouped(units, leftover, spelling)


def _unknown_reason(key: str) -> str:
    for pattern, reason in _UNSUPPORTED:
        if pattern.search(key):
            return reason
    return "not a LoRA tensor name this app knows"
