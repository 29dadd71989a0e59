"""Real weights files for the catalogue tests: tiny random networks and LoRAs under misleading names."""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from tests.lora_helpers import factors
from tests.loading_helpers import file_state, prefixed, save, tiny_model

KIND_PRESETS = {"stage_c": "tiny", "stage_b": "tiny", "stage_a": "tiny", "effnet": "tiny", "previewer": "tiny",
                "text_encoder": "tiny", "clip_vision": "tiny", "controlnet": "tiny_canny"}


@functools.lru_cache(maxsize=None)
def state(kind: str) -> dict[str, torch.Tensor]:
    """A tiny network's file state (built once per test process)."""
    if kind == "controlnet":
        from models.loading.networks import network_spec

        spec = network_spec(kind)
        model = spec.build(spec.presets["tiny_canny"])
        n = len(spec.key_prefix)
        return {k[n:]: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    return file_state(kind, tiny_model(kind))


def write(path: Path, kind: str) -> Path:
    """A tiny `kind` network saved at `path`, whatever its name says."""
    return save(path, state(kind))


def write_all_in_one(path: Path) -> Path:
    """ComfyUI's all-in-one Stage C layout: Stage C + text encoder + EffNet + previewer under prefixes."""
    return save(path, {**prefixed("model.diffusion_model.", state("stage_c")),
                       **prefixed("text_encoders.clip_g.transformer.", state("text_encoder")),
                       **prefixed("effnet.", state("effnet")), **prefixed("previewer.", state("previewer"))})


def lora_state(prefix: str, layer: str = "down_blocks_0_2_kv_mapper_1", rank: int = 2, alpha: float | None = 1.0,
               out: int = 32, cols: int = 32) -> dict[str, torch.Tensor]:
    """One kohya-named LoRA layer `prefix + layer` of the given rank (and alpha tensor unless None)."""
    up, down = factors(out, (cols,), rank, seed=1)
    name = prefix + layer
    tensors = {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down}
    if alpha is not None:
        tensors[f"{name}.alpha"] = torch.tensor(alpha)
    return tensors


def write_loras(folder: Path) -> dict[str, Path]:
    """LoRAs for each target, named to mislead: {'prior', 'decoder', 'te', 'sd15', 'official'} → path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "prior": save(folder / "decoder_style.safetensors", lora_state("lora_prior_unet_", rank=4, alpha=8.0)),
        "decoder": save(folder / "prior_style.safetensors", lora_state("lora_decoder_unet_", "effnet_mapper_0")),
        "te": save(folder / "te_only.safetensors", lora_state("lora_te_", "text_model_encoder_layers_0_mlp_fc1")),
        "sd15": save(folder / "sd15.safetensors", lora_state("lora_unet_", "down_blocks_0_attentions_0_proj_in")),
    }
    up, down = factors(32, (32,), 3, seed=2)
    files["official"] = save(folder / "official.safetensors",
                             {"weights.0.lora_up": up, "weights.0.lora_down": down,
                              "weights.1.lora_up": up.clone(), "weights.1.lora_down": down.clone()})
    return files
