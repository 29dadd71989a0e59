"""ComfyUI's loader classes: CheckpointLoaderSimple, UNETLoader, CLIPLoader and VAELoader, over our loaders.

Files come from ComfyUI's model folders and are read by detection, not by name (nodes/comfy/files.py).
A part a checkpoint lacks (CLIP or VAE of a bare Stage C file) is, as in ComfyUI, an empty output: its
handle is a `MissingPart`, falsy, whose first use raises a node error saying what the file holds and
where the part comes from instead (ComfyUI itself fails with a bare KeyError, its issue #2882).
LoraLoader, LoraLoaderModelOnly and ModelSamplingStableCascade live in nodes/comfy/model_patches.py.
"""
from __future__ import annotations

from pathlib import Path

from engine.schema import COMBO, Input, Node, Output, RunContext
from nodes.comfy import model_patches
from nodes.comfy import types as CT
from nodes.comfy.files import (CODER_PARTS, STAGES, FileLoader, MissingPart, auto_dtype, holds, load_part,
                               stage_of)

WEIGHT_DTYPES = ("default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2")
# ComfyUI's CLIPLoader type list (late 2025). Only `stable_cascade` runs here: see CLIPLoader.
CLIP_TYPES = ("stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos",
              "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image", "flux2",
              "ovis", "longcat_image")


class CheckpointLoaderSimple(FileLoader):
    """Load a Stable Cascade all-in-one checkpoint: Stage C (+ CLIP-G, EffNet, Previewer) or Stage B (+ Stage A)."""

    TITLE, CATEGORY = "Load Checkpoint", "loaders"
    FOLDER, FILE_INPUT = "checkpoints", "ckpt_name"
    EXPECTED = ("a Stable Cascade checkpoint with a Stage C or Stage B diffusion model (ComfyUI's "
                "stable_cascade_stage_c.safetensors / stable_cascade_stage_b.safetensors)")
    INPUTS = (Input("ckpt_name", COMBO, choices=lambda env: env.comfy_files("checkpoints"),
                    tooltip="all-in-one checkpoint from the checkpoints folder (what it holds is read from its keys)"),)
    OUTPUTS = (Output("MODEL", CT.MODEL, "Stage C or Stage B, with its sampling shift"),
               Output("CLIP", CT.CLIP, "the CLIP-G text encoder (empty when the file has none)"),
               Output("VAE", CT.VAE, "Stage C: EffNet encoder + Previewer; Stage B: Stage A (empty when absent)"))

    @classmethod
    def _needed(cls, kinds):
        stages = [s for s in STAGES if s in kinds]
        if len(stages) != 1:
            return []
        parts = ("text_encoder",) + (CODER_PARTS if stages[0] == "stage_c" else ("stage_a",))
        return stages + [k for k in parts if k in kinds]

    def run(self, ctx: RunContext, ckpt_name: str) -> tuple:
        path, kinds = self._file(ctx, ckpt_name)
        stage = stage_of(path, "CheckpointLoaderSimple", self.EXPECTED)
        model = CT.Model.of(load_part(ctx.env, path, stage), stage)
        part = lambda kind: load_part(ctx.env, path, kind) if kind in kinds else None  # noqa: E731
        clip = part("text_encoder")
        if clip is None:
            clip = self._absent(ctx, path, "CLIP", "a CLIP-G text encoder",
                                "load one with CLIPLoader (type stable_cascade) from the text_encoders folder")
        if stage == "stage_c":
            effnet, previewer = part("effnet"), part("previewer")
            if effnet is None and previewer is None:
                effnet = previewer = self._absent(ctx, path, "VAE", "a Stage C VAE (EffNet encoder / Previewer)",
                                                  "load effnet_encoder / previewer files with VAELoader")
            vae = CT.Vae("stage_c_coder", effnet=effnet, previewer=previewer)
        else:
            stage_a = part("stage_a") or self._absent(ctx, path, "VAE", "Stage A",
                                                      "load stage_a.safetensors with VAELoader")
            vae = CT.Vae("stage_a", stage_a=stage_a)
        return (model, CT.Clip(clip), vae)

    @staticmethod
    def _absent(ctx: RunContext, path: Path, output: str, what: str, instead: str) -> MissingPart:
        message = (f"CheckpointLoaderSimple's {output} output is empty: {path.name} holds {holds(path)}, "
                   f"but not {what}; {instead}")
        ctx.warn(message)
        return MissingPart(message)


class UNETLoader(FileLoader):
    """Load a bare Stage C or Stage B diffusion model (any layout our loader reads) as MODEL."""

    TITLE, CATEGORY = "Load Diffusion Model", "advanced/loaders"
    FOLDER, FILE_INPUT = "diffusion_models", "unet_name"
    EXPECTED = "a Stable Cascade Stage C or Stage B diffusion model"
    INPUTS = (Input("unet_name", COMBO, choices=lambda env: env.comfy_files("diffusion_models"),
                    tooltip="Stage C or Stage B file from the diffusion_models (or unet) folder"),
              Input("weight_dtype", COMBO, choices=WEIGHT_DTYPES,
                    tooltip="default: the official dtype (bf16). fp8 choices are accepted but load at the "
                            "default dtype here (with a warning)"))
    OUTPUTS = (Output("MODEL", CT.MODEL),)

    @classmethod
    def _needed(cls, kinds):
        stages = [s for s in STAGES if s in kinds]
        return stages if len(stages) == 1 else []

    def run(self, ctx: RunContext, unet_name: str, weight_dtype: str = "default") -> tuple:
        path, _ = self._file(ctx, unet_name)
        stage = stage_of(path, "UNETLoader", self.EXPECTED)
        if weight_dtype != "default":
            # Our networks and LoRA merge run in bf16/fp32 only; fp8 storage would need fp8-aware layers.
            ctx.warn(f"UNETLoader: weight_dtype {weight_dtype} is not supported here; {path.name} is loaded "
                     f"at the default dtype ({str(auto_dtype(ctx.env, stage)).removeprefix('torch.')})")
        return (CT.Model.of(load_part(ctx.env, path, stage), stage),)


class CLIPLoader(FileLoader):
    """Load Stable Cascade's CLIP-G text encoder as CLIP (type stable_cascade)."""

    TITLE, CATEGORY = "Load CLIP", "advanced/loaders"
    FOLDER, FILE_INPUT = "text_encoders", "clip_name"
    EXPECTED = "a CLIP-G text encoder (Stable Cascade's text_encoder/model.safetensors)"
    INPUTS = (Input("clip_name", COMBO, choices=lambda env: env.comfy_files("text_encoders"),
                    tooltip="CLIP-G text encoder from the text_encoders (or clip) folder"),
              Input("type", COMBO, choices=CLIP_TYPES,
                    tooltip="only stable_cascade is available here (the CLIP-G text encoder of Stable Cascade)"),
              Input("device", COMBO, choices=("default", "cpu"), optional=True,
                    tooltip="accepted for ComfyUI prompts; the text encoder runs on the server's device"))
    OUTPUTS = (Output("CLIP", CT.CLIP),)

    @classmethod
    def _needed(cls, kinds):
        return ["text_encoder"] if "text_encoder" in kinds else []

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        problems = super().check(env, inputs)
        kind = inputs.get("type")
        if isinstance(kind, str) and kind != "stable_cascade":
            problems["type"] = _type_message(kind)
        return problems

    def run(self, ctx: RunContext, clip_name: str, type: str = "stable_diffusion",  # noqa: A002 (ComfyUI's name)
            device: str = "default") -> tuple:
        if type != "stable_cascade":
            raise ValueError(_type_message(type))
        path, _ = self._file(ctx, clip_name)
        if device == "cpu" and not str(ctx.env.device).startswith("cpu"):
            ctx.warn(f"CLIPLoader: device cpu is not supported here; the text encoder runs on {ctx.env.device}")
        return (CT.Clip(load_part(ctx.env, path, "text_encoder")),)


def _type_message(kind: str) -> str:
    # ComfyUI picks the text tower's layer and wrapper from `type`; for CLIP-G with another type it would
    # encode differently (e.g. the penultimate layer for SDXL), so we refuse rather than encode otherwise.
    return (f"type {kind!r} is not available here: this app has only Stable Cascade's CLIP-G text encoder; "
            "choose type stable_cascade")


class VAELoader(FileLoader):
    """Load Stage A (VAE for Stage B latents) or the Stage C coder (EffNet encoder and/or Previewer) as VAE."""

    TITLE, CATEGORY = "Load VAE", "loaders"
    FOLDER, FILE_INPUT = "vae", "vae_name"
    EXPECTED = "Stage A (stage_a.safetensors), the EffNet encoder (effnet_encoder.safetensors) or the Previewer"
    INPUTS = (Input("vae_name", COMBO, choices=lambda env: env.comfy_files("vae"),
                    tooltip="Stage A, EffNet encoder or Previewer file from the vae folder"),)
    OUTPUTS = (Output("VAE", CT.VAE),)

    @classmethod
    def _needed(cls, kinds):
        if "stage_a" in kinds:
            return ["stage_a"]
        return [k for k in CODER_PARTS if k in kinds]

    def run(self, ctx: RunContext, vae_name: str) -> tuple:
        path, kinds = self._file(ctx, vae_name)
        parts = {k: load_part(ctx.env, path, k) for k in self._needed(kinds)}
        return (CT.Vae("stage_a" if "stage_a" in parts else "stage_c_coder", **parts),)


NODES: dict[str, type[Node]] = {cls.__name__: cls for cls in (
    CheckpointLoaderSimple, UNETLoader, CLIPLoader, VAELoader, *model_patches.CLASSES)}
for _cls in NODES.values():
    _cls.DESCRIPTION = _cls.__doc__ or ""
