"""ComfyUI's classes that patch a MODEL / CLIP: LoraLoader, LoraLoaderModelOnly, ModelSamplingStableCascade.

Over our LoRA core (models.lora.apply_lora, as nodes/lora.py): the outputs share the loaded modules and
only carry extra patches, merged while a sampler or text encoder runs; MODEL's stage picks the LoRA's
target (Stage C or Stage B). As in ComfyUI, a side at strength 0 is returned exactly as it came in.
"""
from __future__ import annotations

from typing import Any

from engine.schema import COMBO, FLOAT, Input, Node, Output, RunContext
from models.lora import apply_lora
from models.patching import ModelHandle
from nodes.comfy import types as CT
from nodes.comfy.files import FileLoader, comfy_file, lookup, missing_message

_LORA_STRENGTH = dict(default=1.0, min=-100.0, max=100.0, step=0.01)  # ComfyUI's current range


def _model(value: Any, node: str) -> CT.Model:
    if not isinstance(value, CT.Model):
        raise TypeError(f"{node}: model must be a MODEL (Stage C or Stage B), got {type(value).__name__}")
    return value


class LoraLoader(FileLoader):
    """Apply a LoRA to MODEL (Stage C or Stage B, from its stage) and CLIP; strength 0 leaves that side as is."""

    TITLE, CATEGORY = "Load LoRA", "loaders"
    FOLDER, FILE_INPUT = "loras", "lora_name"
    EXPECTED = "a LoRA"
    INPUTS = (Input("model", CT.MODEL), Input("clip", CT.CLIP),
              Input("lora_name", COMBO, choices=lambda env: env.comfy_files("loras"),
                    tooltip="LoRA file (.safetensors) from the loras folder"),
              Input("strength_model", FLOAT, tooltip="multiplier of the diffusion-model part (may be negative)",
                    **_LORA_STRENGTH),
              Input("strength_clip", FLOAT, tooltip="multiplier of the text-encoder part (may be negative)",
                    **_LORA_STRENGTH))
    OUTPUTS = (Output("MODEL", CT.MODEL), Output("CLIP", CT.CLIP))

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        name = inputs.get("lora_name")
        if isinstance(name, str) and lookup(env, "loras", name) is None:
            return {"lora_name": missing_message(env, "loras", name)}
        return {}

    @classmethod
    def weights_used(cls, env: Any, inputs: dict) -> list[tuple[Any, Any]] | None:
        import torch

        path = lookup(env, "loras", inputs.get("lora_name"))
        return None if path is None else [(path, torch.float32)]  # its factors stay resident with the handle

    def run(self, ctx: RunContext, model: Any, clip: Any, lora_name: str, strength_model: float = 1.0,
            strength_clip: float = 1.0) -> tuple:
        return _apply(ctx, type(self).__name__, model, clip, lora_name, float(strength_model), float(strength_clip))


class LoraLoaderModelOnly(LoraLoader):
    """Apply a LoRA to MODEL only."""

    TITLE = "LoraLoaderModelOnly"
    INPUTS = (Input("model", CT.MODEL), LoraLoader.INPUTS[2],
              Input("strength_model", FLOAT, **_LORA_STRENGTH))
    OUTPUTS = (Output("MODEL", CT.MODEL),)

    def run(self, ctx: RunContext, model: Any, lora_name: str, strength_model: float = 1.0) -> tuple:
        return _apply(ctx, type(self).__name__, model, None, lora_name, float(strength_model), 0.0)[:1]


def _apply(ctx: RunContext, node: str, model: Any, clip: Any, lora_name: str, s_model: float,
           s_clip: float) -> tuple:
    """(MODEL, CLIP) with the LoRA's patches; a side at strength 0 (or an empty CLIP) is returned as is."""
    model = _model(model, node)
    if s_model == 0 and s_clip == 0:
        return (model, clip)  # ComfyUI returns its inputs untouched
    te = clip.handle if isinstance(clip, CT.Clip) and isinstance(clip.handle, ModelHandle) else None
    unet, te2, report = apply_lora(comfy_file(ctx.env, "loras", lora_name), unet=model.handle,
                                   unet_kind=model.stage, text_encoder=te, strength_unet=s_model,
                                   strength_te=s_clip)
    for message in report.warnings():
        ctx.warn(message)
    new_model = model if s_model == 0 else model.with_handle(unet)
    new_clip = clip if s_clip == 0 or te2 is None else CT.Clip(te2)
    return (new_model, new_clip)


class ModelSamplingStableCascade(Node):
    """MODEL with another sampling shift (Stable Cascade's logSNR shift; 2.0 for Stage C, 1.0 for Stage B)."""

    TITLE, CATEGORY = "ModelSamplingStableCascade", "advanced/model"
    INPUTS = (Input("model", CT.MODEL),
              Input("shift", FLOAT, default=2.0, min=0.0, max=100.0, step=0.01,
                    tooltip="shifts the noise schedule's logSNR by 2·ln(1/shift)"))
    OUTPUTS = (Output("MODEL", CT.MODEL),)

    def run(self, ctx: RunContext, model: Any, shift: float = 2.0) -> tuple:
        return (_model(model, "ModelSamplingStableCascade").with_shift(shift),)


CLASSES = (LoraLoader, LoraLoaderModelOnly, ModelSamplingStableCascade)
