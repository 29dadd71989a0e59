"""What a set of tensor names is: which Stable Cascade networks, under which prefixes, in which naming.

Detection works on header information only (names, shapes, dtypes), so it costs a few kilobytes of
reading even for a 14 GB file. The rules follow spec §4.1 (marker keys) extended with prefixes for
ComfyUI all-in-one files and the diffusers/transformers names.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from . import convert
from .safetensors_io import TensorInfo

KINDS = ("stage_c", "stage_b", "stage_a", "effnet", "previewer", "text_encoder", "clip_vision", "controlnet")
# kind -> (marker key, keys of which at least one must sit beside it under the same prefix)
MARKERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("stage_c", "clip_txt_mapper.weight", ("clf.1.weight", "clip_img_mapper.weight", "embedding.1.weight")),
    ("stage_b", "effnet_mapper.0.weight", ("clf.1.weight", "embedding.1.weight", "pixels_mapper.0.weight")),
    ("stage_a", "vquantizer.codebook.weight", ("out_block.0.weight", "in_block.1.weight")),
    ("stage_a", "vquantizer.embedding.weight", ("out_block.0.weight", "in_block.1.weight")),
    ("effnet", "backbone.0.0.weight", ("mapper.0.weight", "mapper.1.running_mean")),
    ("previewer", "blocks.0.weight", ("blocks.11.running_mean", "blocks.24.weight", "blocks.2.running_var")),
    ("text_encoder", "text_model.embeddings.token_embedding.weight",
     ("text_model.final_layer_norm.weight", "text_model.embeddings.position_embedding.weight")),
    ("clip_vision", "vision_model.embeddings.patch_embedding.weight",
     ("visual_projection.weight", "vision_model.post_layernorm.weight")),
    # OpenAI CLIP / open_clip: the vision tower's own names, usually under `visual.` (convert.openai_vision_plan).
    ("clip_vision", "conv1.weight", ("class_embedding", "positional_embedding")),
    # Stable Cascade ControlNets: EfficientNet backbone (canny, inpainting) or 'large' (super-resolution).
    ("controlnet", "projections.0.0.weight", ("backbone.0.0.weight", "backbone.0.weight")),
)
# Recognised but not loadable here: give a precise message instead of "not a Stable Cascade file".
OTHER_MARKERS = (
    ("lora_down.weight", "a LoRA (use a LoRA loader node)"),
    ("lora_A.weight", "a LoRA (use a LoRA loader node)"),
    ("lora_up.weight", "a LoRA (use a LoRA loader node)"),
    ("model.diffusion_model.input_blocks.0.0.weight", "a Stable Diffusion / SDXL checkpoint, not Stable Cascade"),
    ("model.diffusion_model.double_blocks.0.img_attn.qkv.weight", "a Flux checkpoint, not Stable Cascade"),
    ("first_stage_model.encoder.conv_in.weight", "a Stable Diffusion VAE, not Stable Cascade"),
    ("encoder.conv_in.weight", "a Stable Diffusion style VAE, not Stable Cascade"),
)
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked", "position_ids")


@dataclass(frozen=True)
class Found:
    """One network located inside a set of tensors."""

    kind: str
    prefix: str
    layout: str  # "original" | "comfy-split-qkv" | "diffusers" | "transformers" | "clip-g" | "openai"


def find_components(keys) -> list[Found]:
    """Every network present in the key set, longest prefix first, one per (kind, prefix)."""
    keyset = set(keys)
    found: dict[tuple[str, str], Found] = {}
    for key in keyset:
        for kind, marker, beside in MARKERS:
            if not key.endswith(marker):
                continue
            prefix = key[: -len(marker)]
            if prefix and not prefix.endswith("."):
                continue
            if any(prefix + b in keyset for b in beside) and (kind, prefix) not in found:
                found[(kind, prefix)] = Found(kind, prefix, _layout(kind, prefix, keyset))
    return sorted(found.values(), key=lambda f: (-len(f.prefix), KINDS.index(f.kind)))


def _layout(kind: str, prefix: str, keys: set[str]) -> str:
    if kind in ("stage_c", "stage_b"):
        under = [k for k in keys if k.startswith(prefix) and ".attention." in k]
        if any(".attention.to_q." in k for k in under):
            return "diffusers"
        if any(".attention.attn.to_q." in k for k in under):
            return "comfy-split-qkv"
        if kind == "stage_b" and prefix + "clip_txt_pooled_mapper.weight" in keys:
            return "diffusers"
        return "original"
    if kind == "stage_a":
        return "diffusers" if prefix + "vquantizer.embedding.weight" in keys else "original"
    if kind == "text_encoder":
        return "clip-g" if prefix.endswith("transformer.") else "transformers"
    if kind == "clip_vision":
        return "openai" if prefix + "class_embedding" in keys else "transformers"
    return "original"


def plan_for(found: Found, keys) -> convert.Plan:
    """The conversion plan from a component's keys to our model's names."""
    if found.kind in ("stage_c", "stage_b"):
        return convert.unet_plan(keys, found.prefix, stage_b=found.kind == "stage_b")
    if found.kind == "stage_a":
        return convert.vqgan_plan(keys, found.prefix)
    if found.kind == "text_encoder":
        return convert.text_plan(keys, found.prefix)
    if found.kind == "clip_vision":
        return convert.vision_plan(keys, found.prefix)
    return convert.plain_plan(keys, found.prefix)


def owned_keys(components: list[Found], keys) -> dict[Found, set[str]]:
    """Assign each key to the component with the longest matching prefix (ComfyUI CLIP-G extras included)."""
    owners: dict[Found, set[str]] = {f: set() for f in components}
    extras = {k: f for f in components if f.kind == "text_encoder" for k in convert.text_outer_extras(keys, f.prefix)}
    for k in keys:
        if k in extras:
            owners[extras[k]].add(k)
            continue
        for f in components:  # sorted longest prefix first
            if k.startswith(f.prefix):
                owners[f].add(k)
                break
    return owners


def recognise_other(keys) -> str | None:
    """A description of a known non-Stable-Cascade file type, if the keys look like one."""
    for marker, what in OTHER_MARKERS:
        if any(k.endswith(marker) for k in keys):
            return what
    return None


def guess_preset(kind: str, infos: dict[str, TensorInfo]) -> str | None:
    """Official size from spec §4.1's discriminating shapes (None when it is no official size)."""
    def dim(key: str, axis: int) -> int | None:
        info = infos.get(key)
        return info.shape[axis] if info is not None and info.shape else None

    if kind == "stage_c":
        return {2048: "full", 1536: "lite"}.get(dim("clip_txt_mapper.weight", 0))
    if kind == "stage_b":
        return {640: "full", 576: "lite"}.get(dim("down_blocks.1.0.channelwise.0.weight", -1))
    if kind == "text_encoder":
        layers = {k.split(".")[3] for k in infos if k.startswith("text_model.encoder.layers.")}
        return "bigg" if dim("text_model.final_layer_norm.weight", 0) == 1280 and len(layers) == 32 else None
    if kind == "stage_a":
        return "full" if dim("vquantizer.codebook.weight", 0) == 8192 else None
    if kind == "clip_vision":
        layers = {k.split(".")[3] for k in infos if k.startswith("vision_model.encoder.layers.")}
        return "vit_l14" if dim("vision_model.post_layernorm.weight", 0) == 1024 and len(layers) == 24 else None
    return "full" if kind in ("effnet", "previewer") else None


def dtype_summary(infos: dict[str, TensorInfo]) -> str:
    """'bfloat16', 'float32', or 'mixed (…)' over the floating-point tensors."""
    counts = Counter(str(i.dtype).removeprefix("torch.") for i in infos.values() if i.dtype.is_floating_point)
    if not counts:
        return "none"
    if len(counts) == 1:
        return next(iter(counts))
    return "mixed (" + ", ".join(f"{d} ×{n}" for d, n in counts.most_common()) + ")"


def count_params(infos: dict[str, TensorInfo]) -> int:
    """Number of parameter elements (buffers such as BatchNorm statistics excluded)."""
    total = 0
    for key, info in infos.items():
        if key.rsplit(".", 1)[-1] in BUFFER_SUFFIXES:
            continue
        n = 1
        for s in info.shape:
            n *= s
        total += n
    return total


def main_dtype(infos: dict[str, TensorInfo]) -> torch.dtype | None:
    """The most common floating dtype (what 'keep the file's dtype' means for a mixed file)."""
    counts = Counter(i.dtype for i in infos.values() if i.dtype.is_floating_point)
    return counts.most_common(1)[0][0] if counts else None
