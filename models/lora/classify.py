"""What a LoRA file is, from its keys alone: format, which model it targets, rank, alpha, tensor count.

Read-only and cheap: the header gives names and shapes; only the scalar `alpha` tensors are read.
Used by the catalogue (which LoRA node lists a file) and by `python -m models.inspect`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from models.loading.errors import LoadError
from models.loading.safetensors_io import SafetensorsFile, TensorInfo
from models.lora.alphas import peft_scales
from models.lora.mapping import _DOTTED, _KOHYA, TE, UNET
from models.lora.official import RETOKEN_KEYS
from models.lora.report import guess_family
from models.lora.units import group_units

STAGE_C, STAGE_B = "stage_c", "stage_b"
# "unet" means a diffusion model the names do not pin down (`lora_unet_…`): it may fit either stage.
TARGET_TITLES = {STAGE_C: "Stage C (prior)", STAGE_B: "Stage B (decoder)", TE: "text encoder",
                 UNET: "a diffusion model (Stage C or Stage B: the names do not say)"}
_OFFICIAL = re.compile(r"^weights\.\d+$")
# Layer names only one of the two stages has (either spelling): they settle an ambiguous `lora_unet_` file.
_ONLY_B = re.compile(r"effnet_mapper|pixels_mapper|(down|up)_blocks[._][23]([._]|$)")
_ONLY_C = re.compile(r"clip_txt_mapper|clip_img_mapper")


@dataclass(frozen=True)
class LoraInfo:
    """A LoRA file's description. `targets` ⊆ {stage_c, stage_b, text_encoder, unet}; ranks sorted, unique."""

    formats: tuple[str, ...]
    targets: tuple[str, ...]
    tensors: int
    layers: int
    ranks: tuple[int, ...]
    alpha: str  # "8.0", "4.0–16.0", "from PEFT metadata (lora_alpha 8)", or "none (scale 1)"
    foreign: str | None = None  # "SD1.5/SDXL", "Flux", …: a LoRA for another model family (fits no node of ours)

    def fits(self, stage: str) -> bool:
        """True when a LoRA node patching `stage` (stage_c or stage_b) can use this file.

        Stage C's node also takes the text encoder, so a text-encoder-only LoRA is listed there.
        A LoRA whose names are another model family's (SDXL, Flux, …) fits neither.
        """
        if self.foreign:
            return False
        if stage == STAGE_C:
            return bool({STAGE_C, UNET, TE} & set(self.targets))
        return bool({STAGE_B, UNET} & set(self.targets))

    def describe(self) -> str:
        """One line: 'LoRA for Stage C (prior) + text encoder, kohya, rank 4, alpha 4.0, 96 tensors'."""
        ranks = "/".join(map(str, self.ranks)) or "?"
        if self.foreign:
            return f"LoRA for {self.foreign}, not Stable Cascade, {self.tensors} tensors"
        return (f"LoRA for {' + '.join(TARGET_TITLES[t] for t in self.targets)}, {'/'.join(self.formats)}, "
                f"rank {ranks}, alpha {self.alpha}, {self.tensors} tensors")


def _target(base: str) -> str:
    for prefix, role in _KOHYA:
        if base.startswith(prefix):
            return _refine(role, base[len(prefix):])
    role = None
    name, changed = base, True
    while changed:
        changed = False
        for prefix, r in _DOTTED:
            if name.startswith(prefix):
                name, changed, role = name[len(prefix):], True, r or role
    if role is None:
        role = TE if name.startswith(("text_model.", "text_projection")) else UNET
    return _refine(role, name)


def _refine(role: str, name: str) -> str:
    if role != UNET:
        return role
    return STAGE_B if _ONLY_B.search(name) else STAGE_C if _ONLY_C.search(name) else UNET


def classify(infos: dict[str, TensorInfo], metadata: dict[str, str] | None = None,
             alphas: dict[str, float] | None = None) -> LoraInfo | None:
    """Describe a LoRA from its tensor infos (None when no key is a LoRA layer tensor).

    `alphas`: the values of the file's `.alpha` tensors by key, when read (see `describe_file`).
    """
    grouped = group_units(dict(infos))  # roles are read from key suffixes; the values are only carried along
    units = {n: u for n, u in grouped.units.items() if "down" in u.tensors and "up" in u.tensors}
    retoken = all(k in infos for k in RETOKEN_KEYS)
    if not units and not retoken:
        return None
    targets: set[str] = set()
    formats = set(grouped.spelling)
    for name in units:
        targets.add(STAGE_C if _OFFICIAL.match(name) else _target(name))
    if retoken:
        formats.add("official")
        targets.add(TE)
    if {STAGE_C, STAGE_B} & targets:
        targets.discard(UNET)  # the rest of the file already says which stage its unnamed layers are on
    ranks = sorted({int(u.tensors["down"].shape[0]) for u in units.values() if u.tensors["down"].shape})
    family = guess_family(list(infos))
    foreign = family if family and not family.startswith("Stable Cascade") else None
    return LoraInfo(tuple(sorted(formats)) or ("unknown",), tuple(t for t in TARGET_TITLES if t in targets),
                    len(infos), len(units), tuple(ranks), _alpha_text(alphas or {}, metadata), foreign)


def _alpha_text(alphas: dict[str, float], metadata: dict[str, str] | None) -> str:
    if alphas:
        lo, hi = min(alphas.values()), max(alphas.values())
        return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"
    rules = peft_scales(metadata)
    if rules:
        return "from PEFT metadata (lora_alpha " + ", ".join(f"{r.lora_alpha:g}" for r in rules.values()) + ")"
    return "none (scale 1)"


def describe_file(path: Path) -> LoraInfo | None:
    """`classify` for a safetensors file on disk (reads the header and the scalar alphas only).

    Raises LoadError for an unreadable, truncated or non-safetensors file.
    """
    f = SafetensorsFile(Path(path))
    infos = f.infos()
    alphas = {}
    for key, info in infos.items():
        if key.endswith(".alpha") and len(info.shape) <= 1 and (not info.shape or info.shape[0] == 1):
            try:
                alphas[key] = float(f.get(key).float().reshape(-1)[0])
            except (LoadError, OSError, ValueError, RuntimeError):
                continue  # an unreadable alpha only loses that detail
    return classify(infos, {str(k): str(v) for k, v in f.header.metadata.items()}, alphas)
