"""LoRA nodes: add a LoRA file's low-rank patches to Stage C (+ text encoder) or Stage B handles.

The output handles share the loaded modules and only carry extra patches, merged while a sampler
or TextEncode runs (`models.patching.applied`). So chaining, removing or switching LoRAs between
prompts never reloads weights and never changes the model other nodes (or the cache) hold.
"""
from __future__ import annotations

from typing import Any

from engine.schema import Input, Node, Output, Result, RunContext
from models.lora import LoraReport, apply_lora
from models.patching import ModelHandle
from nodes import types as T
from models.lora.classify import TARGET_TITLES
from runtime.catalogue import describe
from runtime.weights import LORA_FOLDER, file_stamp

_STRENGTH = dict(default=1.0, min=-10.0, max=10.0, step=0.05)


def _lora_input(stage: str) -> Input:
    """The file combo: only LoRAs whose keys target this node's model (a Stage C LoRA is not offered to Stage B)."""
    what = "Stage C (prior) or text-encoder" if stage == "stage_c" else "Stage B (decoder)"
    return Input("lora_name", T.COMBO, choices=lambda env: env.lora_files(stage),
                 tooltip=f"{what} LoRA file (.safetensors) from the weights folder's {LORA_FOLDER}/ subfolder")


def _handle(value: Any) -> ModelHandle | None:
    if value is None or isinstance(value, ModelHandle):
        return value
    return ModelHandle(value)  # a bare module from a custom node: wrap, never mutate


def _publish(ctx: RunContext, report: LoraReport) -> str:
    """Send every 'not applied' reason to the job's messages; return the node's report text."""
    for message in report.warnings():
        ctx.warn(message)
    return report.text()


class _LoRABase(Node):
    CATEGORY = "stable_cascade/loaders"

    STAGE = "stage_c"  # the model this node patches: its combo lists only LoRAs for it

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        name = inputs.get("lora_name")
        if not isinstance(name, str):
            return {}
        path = env.weight_path(LORA_FOLDER, name)
        if path is None:
            return {"lora_name": f"LoRA file {name!r} not found in {env.weights_dir / LORA_FOLDER}"}
        info = describe(path)
        if info.lora is None:
            return {"lora_name": f"{name!r} is no LoRA: " + "; ".join(info.problems or (info.summary(),))}
        if not info.lora.fits(cls.STAGE):  # why the combo does not offer it
            if info.lora.foreign:
                why = f"this LoRA is for a different model: its keys look like {info.lora.foreign}"
            else:
                why = f"it is a {info.lora.describe()}"
            return {"lora_name": f"{name!r} cannot be applied to {TARGET_TITLES[cls.STAGE]}: {why}"}
        return {}

    @classmethod
    def fingerprint(cls, env: Any, inputs: dict) -> Any:
        return file_stamp(env, LORA_FOLDER, inputs.get("lora_name"))

    @staticmethod
    def _path(ctx: RunContext, name: str):
        path = ctx.env.weight_path(LORA_FOLDER, name)
        if path is None:
            raise FileNotFoundError(f"LoRA file {name!r} not found in {ctx.env.weights_dir / LORA_FOLDER}")
        return path


class LoRA(_LoRABase):
    """Apply a Stable Cascade LoRA to Stage C and (optionally) the text encoder. Chain several to stack."""

    TITLE = "LoRA (Stage C)"
    DESCRIPTION = __doc__
    INPUTS = (
        Input("stage_c", T.STAGE_C),
        Input("text_encoder", T.TEXT_ENCODER, optional=True,
              tooltip="connect to also apply the LoRA's text-encoder part"),
        _lora_input("stage_c"),
        Input("strength_model", T.FLOAT, tooltip="multiplier of the Stage C part (0 = off)", **_STRENGTH),
        Input("strength_text", T.FLOAT, tooltip="multiplier of the text-encoder part (0 = off)", **_STRENGTH),
    )
    OUTPUTS = (
        Output("stage_c", T.STAGE_C, "Stage C with the LoRA"),
        Output("text_encoder", T.TEXT_ENCODER, "text encoder with the LoRA (only if one was connected)"),
        Output("report", T.STRING, "what was applied and what was not"),
    )

    def run(self, ctx: RunContext, stage_c: Any, lora_name: str, strength_model: float = 1.0,
            strength_text: float = 1.0, text_encoder: Any = None) -> Result:
        unet, te, report = apply_lora(self._path(ctx, lora_name), unet=_handle(stage_c), unet_kind="stage_c",
                                      text_encoder=_handle(text_encoder), strength_unet=float(strength_model),
                                      strength_te=float(strength_text))
        text = _publish(ctx, report)
        return Result((unet, te, text), {"text": [text]})


class LoRAStageB(_LoRABase):
    """Apply a Stage B (decoder) LoRA (`lora_decoder_unet_…` or `decoder.` keys). Rare in the wild."""

    TITLE = "LoRA (Stage B)"
    STAGE = "stage_b"
    DESCRIPTION = __doc__
    INPUTS = (
        Input("stage_b", T.STAGE_B),
        _lora_input("stage_b"),
        Input("strength", T.FLOAT, tooltip="multiplier of the LoRA (0 = off)", **_STRENGTH),
    )
    OUTPUTS = (
        Output("stage_b", T.STAGE_B, "Stage B with the LoRA"),
        Output("report", T.STRING, "what was applied and what was not"),
    )

    def run(self, ctx: RunContext, stage_b: Any, lora_name: str, strength: float = 1.0) -> Result:
        unet, _, report = apply_lora(self._path(ctx, lora_name), unet=_handle(stage_b), unet_kind="stage_b",
                                     strength_unet=float(strength))
        text = _publish(ctx, report)
        return Result((unet, text), {"text": [text]})
