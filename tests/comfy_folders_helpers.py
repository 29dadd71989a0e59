"""A weights folder in ComfyUI's layout, written from tiny random (non-zero) networks by the tests."""
from __future__ import annotations

from pathlib import Path

import torch

from tests.loading_helpers import clip_g_state, file_state, prefixed, save, split_qkv, tiny_model

KINDS = ("stage_c", "stage_b", "stage_a", "text_encoder", "effnet", "previewer")


def tiny_models() -> dict[str, torch.nn.Module]:
    """One tiny random network per kind (distinct seeds)."""
    return {kind: tiny_model(kind, seed=i + 1) for i, kind in enumerate(KINDS)}


def stage_c_all_in_one(models) -> dict[str, torch.Tensor]:
    """ComfyUI's `stable_cascade_stage_c.safetensors` layout: q/k/v split, CLIP-G, EffNet and previewer."""
    return {**prefixed("model.diffusion_model.", split_qkv(file_state("stage_c", models["stage_c"]))),
            **prefixed("text_encoder.", clip_g_state(file_state("text_encoder", models["text_encoder"]),
                                                     openclip_projection=True)),
            **prefixed("vae.encoder.", file_state("effnet", models["effnet"])),
            **prefixed("vae.previewer.", file_state("previewer", models["previewer"]))}


def stage_b_all_in_one(models) -> dict[str, torch.Tensor]:
    """ComfyUI's `stable_cascade_stage_b.safetensors` layout: Stage B (q/k/v split), Stage A, CLIP-G."""
    return {**prefixed("model.diffusion_model.", split_qkv(file_state("stage_b", models["stage_b"]))),
            **prefixed("vae.", file_state("stage_a", models["stage_a"])),
            **prefixed("text_encoder.", clip_g_state(file_state("text_encoder", models["text_encoder"]),
                                                     openclip_projection=True))}


def write_comfy_layout(weights: Path, models) -> dict[str, Path]:
    """Files in every ComfyUI folder; returns {label: path}. Separate files hold the same tensors."""
    files = {
        "aio_c": save(weights / "checkpoints" / "stable_cascade_stage_c.safetensors", stage_c_all_in_one(models)),
        "aio_b": save(weights / "checkpoints" / "stable_cascade_stage_b.safetensors", stage_b_all_in_one(models)),
        "bare_b_in_ckpt": save(weights / "checkpoints" / "stage_b_bare.safetensors",
                               file_state("stage_b", models["stage_b"])),
        "unet_c": save(weights / "unet" / "cascade" / "stage_c.safetensors", file_state("stage_c", models["stage_c"])),
        "dm_b": save(weights / "diffusion_models" / "stage_b.safetensors", file_state("stage_b", models["stage_b"])),
        "te": save(weights / "text_encoders" / "clip_g.safetensors",
                   file_state("text_encoder", models["text_encoder"])),
        "clip_te": save(weights / "clip" / "model.safetensors", file_state("text_encoder", models["text_encoder"])),
        "vae_a": save(weights / "vae" / "stage_a.safetensors", file_state("stage_a", models["stage_a"])),
        "vae_effnet": save(weights / "vae" / "effnet_encoder.safetensors", file_state("effnet", models["effnet"])),
        "vision": save(weights / "clip_vision" / "vit_l.safetensors",
                       {"vision_model.embeddings.patch_embedding.weight": torch.randn(8, 3, 2, 2)}),
        "controlnet": save(weights / "controlnet" / "canny.safetensors",
                           {"backbone.0.0.weight": torch.randn(4, 3, 3, 3)}),
        "lora": save(weights / "loras" / "style.safetensors",
                     {"lora_unet_x.lora_down.weight": torch.randn(2, 4),
                      "lora_unet_x.lora_up.weight": torch.randn(4, 2)}),
    }
    junk = weights / "checkpoints" / "junk.safetensors"  # not safetensors at all, only named so
    junk.write_bytes(torch.randn(64).numpy().tobytes())
    files["junk"] = junk
    return files
