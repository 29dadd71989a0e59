"""LoRA for Stable Cascade: read a safetensors file in any common format and patch our models.

    unet2, te2, report = apply_lora(path, unet=stage_c_handle, unet_kind="stage_c",
                                    text_encoder=te_handle, strength_unet=1.0, strength_te=1.0)

Handles are `models.patching.ModelHandle`; the result handles share the modules and only add
patches, so the input handles and the models other nodes hold are never changed.
"""
from __future__ import annotations

from pathlib import Path

import torch

from models.loading.errors import LoadError
from models.loading.safetensors_io import SafetensorsFile
from models.lora.alphas import PeftScale, peft_scales
from models.lora.mapping import TE, UNET, Models, nonfinite, unit_patches
from models.lora.official import RETOKEN_KEYS, official_patches, retoken_patches, split_official
from models.lora.report import LoraError, LoraReport
from models.lora.units import group_units
from models.patching import ModelHandle, Patch

__all__ = ["LoraError", "LoraReport", "Models", "apply_lora", "load_lora", "lora_patches", "read_lora"]


def load_lora(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a LoRA's tensors. Only safetensors: pickled `.pt/.ckpt` files can run code when loaded."""
    return read_lora(path)[0]


def read_lora(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, safetensors metadata) of a LoRA file; LoraError if it is not a readable safetensors."""
    path = Path(path)
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise LoraError(f"{path.name}: only .safetensors LoRA files are loaded (pickle files are unsafe)")
    try:
        # The loaders' reader: each tensor in aligned storage of its own, so ΔW never depends on the file layout.
        f = SafetensorsFile(path)
        return {k: f.get(k) for k in f.infos()}, {str(k): str(v) for k, v in f.header.metadata.items()}
    except LoadError as exc:
        raise LoraError(f"{path.name}: not a readable safetensors file ({exc})") from exc


def lora_patches(state: dict[str, torch.Tensor], models: Models, source: str = "lora",
                 scales: dict[str, PeftScale] | None = None) -> tuple[dict[str, list[Patch]], LoraReport]:
    """Patches per role ("unet", "text_encoder") and the report; raises LoraError if nothing fits."""
    report = LoraReport(source=source, total_tensors=len(state))
    patches: dict[str, list[Patch]] = {UNET: [], TE: []}
    state = dict(state)
    if all(k in state for k in RETOKEN_KEYS):
        report.formats.append("official")
        patches[TE] += retoken_patches(state, models, report, source)
        for k in RETOKEN_KEYS:
            del state[k]
    grouped = group_units(state)
    report.formats += sorted(grouped.spelling - set(report.formats))
    report.unmatched.extend(grouped.leftover)
    official, named = split_official(grouped.units)
    if official:
        patches[UNET] += official_patches(official, models, report, source)
    found = unit_patches(named, models, report, source, scales)
    patches[UNET] += found[UNET]
    patches[TE] += found[TE]
    bad = nonfinite([*official.values(), *named])
    if bad:
        raise LoraError(f"LoRA {source}: tensors contain NaN/inf ({', '.join(bad[:4])}); the file is broken")
    if report.matched_tensors == 0:
        raise LoraError(report.nothing_matched_message())
    return patches, report


def apply_lora(path: str | Path, *, unet: ModelHandle | None, unet_kind: str,
               text_encoder: ModelHandle | None = None, strength_unet: float = 1.0,
               strength_te: float = 1.0) -> tuple[ModelHandle | None, ModelHandle | None, LoraReport]:
    """New handles with the LoRA's patches appended, plus the report (input handles untouched)."""
    path = Path(path)
    mode = getattr(unet.module, "quant_mode", None) if unet is not None else None
    if mode is not None:  # its matrices are int8 buffers: there is no float weight to add a delta to
        raise LoraError(f"LoRA {path.name}: the {unet_kind.replace('_', ' ').title()} was loaded with quantize "
                        f"{mode}; LoRAs patch float weights: load it with quantize none")
    models = Models(unet=unet.module if unet else None, unet_kind=unet_kind,
                    text_encoder=text_encoder.module if text_encoder else None,
                    strength_unet=strength_unet, strength_te=strength_te)
    state, metadata = read_lora(path)
    patches, report = lora_patches(state, models, source=path.name, scales=peft_scales(metadata, path))
    new_unet = unet.with_patches(patches[UNET]) if unet is not None else None
    new_te = text_encoder.with_patches(patches[TE]) if text_encoder is not None else None
    return new_unet, new_te, report
