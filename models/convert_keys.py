"""Key and config conversion between the original Stable Cascade layout and diffusers' (spec §4.2).

Pure functions over state dicts (any tensor-like values that support chunk/cat, meta tensors included),
shared by the tests and the loaders.
"""
from __future__ import annotations

from typing import Mapping

import torch

from .stage_b import StageBConfig
from .stage_c import StageCConfig

_IN_PROJ = ".attention.attn.in_proj_"
_OUT_PROJ = ".attention.attn.out_proj."
_BLOCK_NAMES = {"C": "SDCascadeResBlock", "T": "SDCascadeTimestepBlock", "A": "SDCascadeAttnBlock"}


def unet_original_to_diffusers(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original Stage C/B keys -> diffusers StableCascadeUNet keys (split q/k/v, to_out.0, clip mapper)."""
    is_stage_b = "clip_mapper.weight" in sd
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        dotted = "." + key  # so that a block's own "attention.attn..." keys match too
        if _IN_PROJ in dotted:
            prefix, kind = dotted.split(_IN_PROJ)
            for name, part in zip(("to_q", "to_k", "to_v"), value.chunk(3, dim=0)):
                out[f"{prefix}.attention.{name}.{kind}"[1:]] = part
        elif _OUT_PROJ in dotted:
            prefix, kind = dotted.split(_OUT_PROJ)
            out[f"{prefix}.attention.to_out.0.{kind}"[1:]] = value
        elif is_stage_b and key.startswith("clip_mapper."):
            out["clip_txt_pooled_mapper." + key[len("clip_mapper."):]] = value
        else:
            out[key] = value
    return out


def unet_diffusers_to_original(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers StableCascadeUNet keys -> original keys (inverse of unet_original_to_diffusers)."""
    is_stage_b = "effnet_mapper.0.weight" in sd
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        dotted = "." + key
        if ".attention.to_q." in dotted:
            prefix, kind = dotted.split(".attention.to_q.")
            parts = [sd[f"{prefix}.attention.{n}.{kind}"[1:]] for n in ("to_q", "to_k", "to_v")]
            out[f"{prefix}{_IN_PROJ}{kind}"[1:]] = torch.cat(parts, dim=0)
        elif ".attention.to_k." in dotted or ".attention.to_v." in dotted:
            continue
        elif ".attention.to_out.0." in dotted:
            prefix, kind = dotted.split(".attention.to_out.0.")
            out[f"{prefix}{_OUT_PROJ}{kind}"[1:]] = value
        elif is_stage_b and key.startswith("clip_txt_pooled_mapper."):
            out["clip_mapper." + key[len("clip_txt_pooled_mapper."):]] = value
        else:
            out[key] = value
    return out


def stage_a_original_to_diffusers(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stage A keys -> PaellaVQModel keys (only the codebook name differs)."""
    return {("vquantizer.embedding.weight" if k == "vquantizer.codebook.weight" else k): v for k, v in sd.items()}


def stage_a_diffusers_to_original(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """PaellaVQModel keys -> Stage A keys."""
    return {("vquantizer.codebook.weight" if k == "vquantizer.embedding.weight" else k): v for k, v in sd.items()}


def unet_config_to_diffusers(cfg: StageCConfig | StageBConfig) -> dict:
    """Our Stage C/B config -> StableCascadeUNet constructor kwargs."""
    is_c = isinstance(cfg, StageCConfig)
    return dict(
        in_channels=cfg.c_in, out_channels=cfg.c_out, timestep_ratio_embedding_dim=cfg.c_r,
        patch_size=cfg.patch_size, conditioning_dim=cfg.c_cond, block_out_channels=list(cfg.c_hidden),
        num_attention_heads=[max(h, 0) for h in cfg.nhead],
        down_num_layers_per_block=list(cfg.blocks[0]), up_num_layers_per_block=list(cfg.blocks[1]),
        down_blocks_repeat_mappers=list(cfg.block_repeat[0]), up_blocks_repeat_mappers=list(cfg.block_repeat[1]),
        block_types_per_layer=[[_BLOCK_NAMES[ch] for ch in lvl] for lvl in cfg.level_config],
        clip_text_in_channels=cfg.c_clip_text if is_c else None,
        clip_text_pooled_in_channels=cfg.c_clip_text_pooled if is_c else cfg.c_clip,
        clip_image_in_channels=cfg.c_clip_img if is_c else None, clip_seq=cfg.c_clip_seq,
        effnet_in_channels=None if is_c else cfg.c_effnet, pixel_mapper_in_channels=None if is_c else cfg.c_pixels,
        kernel_size=cfg.kernel_size, dropout=list(cfg.dropout), self_attn=cfg.self_attn,
        timestep_conditioning_type=list(cfg.t_conds), switch_level=list(cfg.switch_level) if is_c else None,
    )


def unet_config_from_diffusers(d: Mapping) -> StageCConfig | StageBConfig:
    """A diffusers prior/decoder config.json dict (either spelling) -> StageCConfig or StageBConfig."""
    if "c_hidden" in d:  # the first HF upload used the official names
        official = {k: v for k, v in d.items() if not k.startswith("_")}
        cls = StageBConfig if official.get("c_effnet") else StageCConfig
        fields = cls.__dataclass_fields__
        return cls(**{k: _tuplify(v) for k, v in official.items() if k in fields})
    letters = {v: k for k, v in _BLOCK_NAMES.items()}
    common = dict(
        c_in=d["in_channels"], c_out=d["out_channels"], c_r=d.get("timestep_ratio_embedding_dim", 64),
        patch_size=d["patch_size"], c_cond=d["conditioning_dim"], c_hidden=tuple(d["block_out_channels"]),
        nhead=tuple(h if h > 0 else -1 for h in d["num_attention_heads"]),
        blocks=(tuple(d["down_num_layers_per_block"]), tuple(d["up_num_layers_per_block"])),
        block_repeat=(tuple(d["down_blocks_repeat_mappers"]), tuple(d["up_blocks_repeat_mappers"])),
        level_config=tuple("".join(letters[b] for b in lvl) for lvl in d["block_types_per_layer"]),
        c_clip_seq=d.get("clip_seq", 4), kernel_size=d.get("kernel_size", 3), dropout=tuple(d["dropout"]),
        self_attn=d.get("self_attn", True), t_conds=tuple(d["timestep_conditioning_type"]),
    )
    if d.get("effnet_in_channels"):
        return StageBConfig(**common, c_clip=d["clip_text_pooled_in_channels"], c_effnet=d["effnet_in_channels"],
                            c_pixels=d.get("pixel_mapper_in_channels") or 3)
    return StageCConfig(**common, c_clip_text=d["clip_text_in_channels"],
                        c_clip_text_pooled=d["clip_text_pooled_in_channels"], c_clip_img=d["clip_image_in_channels"],
                        switch_level=tuple(d.get("switch_level") or (False,)))


def _tuplify(v):
    if isinstance(v, list):
        return tuple(_tuplify(x) for x in v)
    return v
