"""Helpers for the loading tests: tiny random models written in every checkpoint format we accept."""
from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from models.convert_keys import stage_a_original_to_diffusers, unet_config_to_diffusers, unet_original_to_diffusers
from models.demo import randomise
from models.loading.networks import network_spec

UNET_CLASS = "StableCascadeUNet"


def tiny_model(kind: str, seed: int = 0) -> torch.nn.Module:
    """A tiny-preset network with non-zero random weights (eval mode)."""
    spec = network_spec(kind)
    model = spec.build(spec.presets["tiny"])
    randomise(model, torch.Generator().manual_seed(seed))
    return model.eval()


def file_state(kind: str, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict under file key names (transformers names for the text encoder)."""
    n = len(network_spec(kind).key_prefix)
    return {k[n:]: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def save(path: Path, state: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> Path:
    """Save a state dict as safetensors (optionally casting floats)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(path))
    return path


def split_qkv(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's split layout: in_proj → attn.to_q/to_k/to_v (out_proj kept)."""
    out = {}
    for k, v in state.items():
        if ".attention.attn.in_proj_" in k:
            base, w = k.split(".in_proj_")
            for name, part in zip(("to_q", "to_k", "to_v"), v.chunk(3, dim=0)):
                out[f"{base}.{name}.{w}"] = part.clone()
        else:
            out[k] = v
    return out


def diffusers_config(kind: str, model, spelling: str = "diffusers") -> dict:
    """config.json for a diffusers folder of this network (both UNet config spellings)."""
    cfg = model.config
    if kind in ("stage_c", "stage_b"):
        if spelling == "official":
            body = json.loads(json.dumps(dataclasses.asdict(cfg)))
            return {"_class_name": "StableCascadeUnet", "_diffusers_version": "0.26.0.dev0", **body}
        return {"_class_name": UNET_CLASS, "_diffusers_version": "0.42.1", **unet_config_to_diffusers(cfg)}
    if kind == "stage_a":
        return {"_class_name": "PaellaVQModel", "in_channels": 3, "out_channels": 3, "levels": cfg.levels,
                "bottleneck_blocks": cfg.bottleneck_blocks, "embed_dim": cfg.c_hidden,
                "latent_channels": cfg.c_latent, "num_vq_embeddings": cfg.codebook_size, "scale_factor": 0.3764}
    if kind == "text_encoder":
        return {"architectures": ["CLIPTextModelWithProjection"], "model_type": "clip_text_model",
                **dataclasses.asdict(cfg)}
    raise ValueError(kind)


def diffusers_state(kind: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """File keys → diffusers names (the networks engineer's converters)."""
    if kind in ("stage_c", "stage_b"):
        return {k: v.clone().contiguous() for k, v in unet_original_to_diffusers(state).items()}
    if kind == "stage_a":
        return stage_a_original_to_diffusers(state)
    return state


def write_diffusers(folder: Path, kind: str, model, *, shards: int = 1, variant: str | None = None,
                    spelling: str = "diffusers", dtype: torch.dtype | None = None) -> Path:
    """A diffusers model folder: config.json plus (possibly sharded, possibly variant) weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(diffusers_config(kind, model, spelling)))
    state = diffusers_state(kind, file_state(kind, model))
    stem = "model" if kind == "text_encoder" else "diffusion_pytorch_model"
    suffix = f".{variant}" if variant else ""
    if shards == 1:
        save(folder / f"{stem}{suffix}.safetensors", state, dtype)
        return folder
    keys = sorted(state)
    weight_map = {}
    for i in range(shards):
        name = f"{stem}{suffix}-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k] for k in keys[i::shards]}
        save(folder / name, part, dtype)
        weight_map.update({k: name for k in part})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / f"{stem}{suffix}.safetensors.index.json").write_text(json.dumps(index))
    return folder


def zip_folder(folder: Path, zip_path: Path, *, compress: bool = False, arc_root: str = "") -> Path:
    """Zip a folder (stored by default, like most checkpoint zips; deflated on request)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(zip_path, "w", method) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, arc_root + p.relative_to(folder).as_posix())
    return zip_path


def clip_g_state(text_state: dict[str, torch.Tensor], *, openclip_projection: bool) -> dict[str, torch.Tensor]:
    """ComfyUI CLIP-G layout under `clip_g.`; projection either transformers-style or OpenCLIP [in,out]."""
    out = {f"clip_g.transformer.{k}": v for k, v in text_state.items() if k != "text_projection.weight"}
    proj = text_state["text_projection.weight"]
    if openclip_projection:
        out["clip_g.text_projection"] = proj.t().contiguous()
    else:
        out["clip_g.transformer.text_projection.weight"] = proj
    out["clip_g.logit_scale"] = torch.tensor(4.6)
    out["clip_g.transformer.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    return out


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add a key prefix."""
    return {prefix + k: v for k, v in state.items()}
