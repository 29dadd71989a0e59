"""Where a LoRA's alpha comes from when the file has no `.alpha` tensors (diffusers/PEFT saves).

kohya writes one `.alpha` scalar per layer. PEFT keeps `lora_alpha`/`r` in `adapter_config.json`
beside `adapter_model.safetensors`; diffusers (≥0.34) writes the same fields, prefixed by component
(`prior.lora_alpha`, `text_encoder.r`, …), as JSON under the safetensors metadata key
`lora_adapter_metadata`. Without either, the diffusers/PEFT convention is alpha = rank (scale 1).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

METADATA_KEY = "lora_adapter_metadata"


@dataclass(frozen=True)
class PeftScale:
    """PEFT LoraConfig fields that set the scale: lora_alpha, alpha_pattern, use_rslora."""

    lora_alpha: float
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    use_rslora: bool = False

    def scale(self, layer: str, rank: int) -> float:
        """alpha/rank (or alpha/√rank with rsLoRA) for one layer, honouring alpha_pattern."""
        alpha = self.lora_alpha
        for pattern, value in self.alpha_pattern.items():  # PEFT: key matches the end of the module name
            if re.search(rf"(^|\.){pattern}$", layer):
                alpha = float(value)
                break
        return alpha / (math.sqrt(rank) if self.use_rslora else rank)


def _from_fields(fields: dict) -> PeftScale | None:
    if "lora_alpha" not in fields:
        return None
    return PeftScale(float(fields["lora_alpha"]), dict(fields.get("alpha_pattern") or {}),
                     bool(fields.get("use_rslora", False)))


def peft_scales(metadata: dict[str, str] | None, path: Path | None = None) -> dict[str, PeftScale]:
    """{component prefix ('' = whole file): scale rule} from safetensors metadata or a PEFT sidecar."""
    out: dict[str, PeftScale] = {}
    raw = (metadata or {}).get(METADATA_KEY)
    if raw:
        try:
            flat = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
            flat = {}
        by_prefix: dict[str, dict] = {}
        for key, value in flat.items() if isinstance(flat, dict) else ():
            prefix, _, name = key.rpartition(".")
            by_prefix.setdefault(prefix, {})[name] = value
        for prefix, fields in by_prefix.items():
            rule = _from_fields(fields)
            if rule is not None:
                out[prefix] = rule
    sidecar = path.with_name("adapter_config.json") if path is not None else None
    if sidecar is not None and path.name == "adapter_model.safetensors" and sidecar.is_file():
        try:
            rule = _from_fields(json.loads(sidecar.read_text()))
        except (ValueError, RecursionError):
            rule = None
        if rule is not None:
            out.setdefault("", rule)
    return out


def rule_for(scales: dict[str, PeftScale], unit_name: str) -> tuple[PeftScale, str] | None:
    """The rule whose component prefix starts this unit's name (longest first), and the layer name."""
    for prefix in sorted(scales, key=len, reverse=True):
        if not prefix:
            return scales[prefix], unit_name
        if unit_name.startswith(prefix + "."):
            return scales[prefix], unit_name[len(prefix) + 1:]
    return None
