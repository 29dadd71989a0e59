"""Loader nodes: pick a weights file from its subfolder and a dtype; output a ModelHandle."""
from __future__ import annotations

from typing import Any, ClassVar

from engine.schema import Input, Node, Output, RunContext
from models.patching import ModelHandle
from nodes import types as T
from models.quant import QUANT_MODES
from runtime.env import dtype_choices
from runtime.weights import DEFAULT_FILES, KIND_FOLDERS, file_stamp, missing_file_message

_DTYPE_TIP = ("auto: bf16 for Stage C/B and the text encoder, fp32 for Stage A, EffNet and the previewer "
              "(the official inference dtypes; Stage A bf16 where the GPU or CPU does bf16 natively, within a measured error bound). Stage C offers no fp16: it overflows.")


def _loader_inputs(kind: str, what: str) -> tuple[Input, ...]:
    folder = KIND_FOLDERS[kind]
    return (
        Input("file", T.COMBO, default=DEFAULT_FILES[kind], choices=lambda env: env.weight_files(kind),
              tooltip=f"{what} weights file, from the weights folder's {folder}/ subfolder, or from ComfyUI's "
                      "folders (checkpoints/, unet/, diffusion_models/, text_encoders/, clip/, vae/) when its "
                      "tensors hold one (an all-in-one checkpoint offers each of its parts)"),
        Input("dtype", T.COMBO, default="auto", choices=dtype_choices(kind), tooltip=_DTYPE_TIP),
    )


_QUANT_INPUT = Input(
    "quantize", T.COMBO, default="none", choices=QUANT_MODES, optional=True,
    tooltip="int8 weights for the Linear and 1×1 layers (models/quant.py). none: today's exact output. "
            "int8_weight: half the bf16 memory (2-3x slower on the CPU; for small GPUs). "
            "int8_dynamic: also int8 activations "
            "(CPUs with VNNI/AMX; faster there, falls back to int8_weight elsewhere). LoRAs need none (they "
            "patch float weights). Error figures: bench/results/README_quant.md")


class _Loader(Node):
    """Shared behaviour: list files of KIND, validate the choice, load through the model manager."""

    KIND: ClassVar[str] = ""
    CATEGORY = "stable_cascade/loaders"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.DESCRIPTION = cls.__doc__ or ""

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        name = inputs.get("file")
        if isinstance(name, str) and env.weight_path(cls.KIND, name) is None:
            return {"file": missing_file_message(env.weights_dir, KIND_FOLDERS.get(cls.KIND, cls.KIND), name)}
        return {}

    @classmethod
    def fingerprint(cls, env: Any, inputs: dict) -> Any:
        return file_stamp(env, cls.KIND, inputs.get("file"))

    @classmethod
    def weights_used(cls, env: Any, inputs: dict) -> list[tuple[Any, ...]] | None:
        """[(path, torch dtype, quantize mode)] this node loads (admission's estimate), or None if the
        file is unknown."""
        path = env.weight_path(cls.KIND, inputs.get("file"))
        if path is None:
            return None
        return [(path, env.resolve_dtype(cls.KIND, inputs.get("dtype", "auto")), inputs.get("quantize", "none"))]

    def run(self, ctx: RunContext, file: str, dtype: str = "auto", quantize: str = "none") -> tuple:
        return (ModelHandle(ctx.env.load_model(self.KIND, file, dtype, quantize)),)


class LoadStageC(_Loader):
    """Load the Stage C prior (text → 16-channel latent at about 1/42 of the image size)."""

    KIND, TITLE = "stage_c", "Load Stage C"
    INPUTS = _loader_inputs("stage_c", "Stage C (prior)") + (_QUANT_INPUT,)
    OUTPUTS = (Output("stage_c", T.STAGE_C, "the Stage C prior"),)


class LoadStageB(_Loader):
    """Load the Stage B decoder (Stage C latent → 4-channel latent at 1/4 of the image size)."""

    KIND, TITLE = "stage_b", "Load Stage B"
    INPUTS = _loader_inputs("stage_b", "Stage B (decoder)") + (_QUANT_INPUT,)
    OUTPUTS = (Output("stage_b", T.STAGE_B, "the Stage B decoder"),)


class LoadStageA(_Loader):
    """Load Stage A, the VQGAN that turns Stage B latents into pixels (and back)."""

    KIND, TITLE = "stage_a", "Load Stage A"
    INPUTS = _loader_inputs("stage_a", "Stage A (VQGAN)")
    OUTPUTS = (Output("stage_a", T.STAGE_A, "the Stage A VQGAN"),)


class LoadTextEncoder(_Loader):
    """Load the CLIP ViT-bigG text encoder used by both Stage C and Stage B."""

    KIND, TITLE = "text_encoder", "Load Text Encoder"
    INPUTS = _loader_inputs("text_encoder", "CLIP ViT-bigG text encoder")
    OUTPUTS = (Output("text_encoder", T.TEXT_ENCODER, "the CLIP text encoder"),)


class LoadEffNet(_Loader):
    """Load the EfficientNet encoder that turns an image into a Stage C latent (image-to-image)."""

    KIND, TITLE = "effnet", "Load EffNet Encoder"
    INPUTS = _loader_inputs("effnet", "EfficientNet encoder")
    OUTPUTS = (Output("effnet", T.EFFNET, "the EffNet encoder"),)


class LoadPreviewer(_Loader):
    """Load the Previewer that renders Stage C latents as small RGB images for live previews."""

    KIND, TITLE = "previewer", "Load Previewer"
    INPUTS = _loader_inputs("previewer", "Previewer")
    OUTPUTS = (Output("previewer", T.PREVIEWER, "the latent previewer"),)

