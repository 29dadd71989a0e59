"""ComfyUI's socket types and the data they carry here (the contract every class of the family shares).

ComfyUI names one socket type for data that our own nodes split by stage (MODEL is Stage C *or* Stage B;
VAE is Stage A *or* the Stage C coder), so these types wrap our handles and say which stage they hold.
CONDITIONING and IMAGE are shared with our own nodes: IMAGE has the same layout in both families, and
CONDITIONING is ComfyUI's entry list here while our TextEncode gives a `nodes.types.Conditioning`;
`entries()` reads either, and `nodes.types.as_conditioning` turns a plain entry list back for our samplers.

CONDITIONING, as in ComfyUI: a list of ``[hidden, extras]`` entries, hidden [1, 77·k, 1280] (CLIP-G's last
hidden states before the final LayerNorm) and extras a dict with
  * ``pooled_output``: [1, 1280], the projected pooled vector;
  * ``stable_cascade_prior``: a Stage C latent [B, 16, h, w] for Stage B (StableCascade_StageB_Conditioning);
  * ``unclip_conditioning``: list of {"clip_vision_output": ClipVisionOutput, "strength", "noise_augmentation"};
  * ``control``: a ControlNetApplied (outermost first; each holds the one applied before it).
Entries are never mutated: a node that adds an extra copies the dict (ComfyUI's rule too).

LATENT: a dict with ``samples`` [B, C, h, w] float32 (C = 16 for Stage C, 4 for Stage B), optionally
``batch_index`` (list of ints). Stage B latents are in ComfyUI's latent format: the raw Stage A latent,
i.e. KSampler multiplies Stage B's output by 0.43 on the way out and divides on the way in.
IMAGE: float32 [B, H, W, C] in [0, 1], C = 3 or 4. MASK: float32 [B, H, W] in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from models.patching import ModelHandle
from nodes import types as T

MODEL = "MODEL"
CLIP = "CLIP"
VAE = "VAE"
CONDITIONING = T.CONDITIONING
LATENT = "LATENT"
IMAGE = T.IMAGE
MASK = "MASK"
CLIP_VISION = "CLIP_VISION"
CLIP_VISION_OUTPUT = "CLIP_VISION_OUTPUT"
CONTROL_NET = "CONTROL_NET"

STAGE_B_LATENT_SCALE = 0.43  # ComfyUI's SC_B latent format: scale_factor 1/0.43 (= Stage A's scale_factor)
DEFAULT_SHIFT = {"stage_c": 2.0, "stage_b": 1.0}  # ComfyUI's StableCascadeSampling shift per stage


@dataclass(frozen=True)
class Model:
    """MODEL: a Stage C or Stage B network (with its LoRA patches) and the sampling shift to use."""

    handle: ModelHandle
    stage: str  # "stage_c" | "stage_b"
    shift: float

    @classmethod
    def of(cls, handle: ModelHandle, stage: str) -> "Model":
        return cls(handle, stage, DEFAULT_SHIFT[stage])

    def with_shift(self, shift: float) -> "Model":
        return replace(self, shift=float(shift))

    def with_handle(self, handle: ModelHandle) -> "Model":
        return replace(self, handle=handle)


@dataclass(frozen=True)
class Clip:
    """CLIP: the CLIP ViT-bigG text encoder (with its LoRA patches)."""

    handle: ModelHandle


@dataclass(frozen=True)
class Vae:
    """VAE: Stage A (kind "stage_a": 4 channels, downscale 4) or the Stage C coder (kind "stage_c_coder":
    EfficientNet encoder + Previewer, 16 channels, downscale 32). Parts a file lacks are None."""

    kind: str
    stage_a: ModelHandle | None = None
    effnet: ModelHandle | None = None
    previewer: ModelHandle | None = None


@dataclass(frozen=True)
class ClipVisionOutput:
    """CLIP_VISION_OUTPUT: image_embeds [B, 768] (projected pooled output), last_hidden_state [B, 257, 1024]."""

    image_embeds: torch.Tensor
    last_hidden_state: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ControlNetApplied:
    """extras["control"]: a ControlNet (ModelHandle) applied with a hint image, strength and percent range,
    chained to the control applied before it (`previous`). Shared, never mutated except its residual cache.

    hint: [B, C, H, W] float32 (ComfyUI's movedim'ed IMAGE). `env` makes the ControlNet resident when it runs.
    """

    control: ModelHandle
    env: Any
    hint: torch.Tensor
    strength: float = 1.0
    start_percent: float = 0.0
    end_percent: float = 1.0
    previous: "ControlNetApplied | None" = None
    cache: dict = field(default_factory=dict, repr=False)  # (B, h, w) -> scaled residuals

    def stage_c_inputs(self, x_shape, sigma, percent_to_sigma) -> list[torch.Tensor | None] | None:
        """Stage C's `cnet=` list for a latent of shape x_shape [B,16,h,w] at noise level sigma, or None.

        percent_to_sigma: the sampler's ComfyUI-style callable (0 -> above sigma_max, 1 -> 0). This control
        is active while percent_to_sigma(start) >= sigma >= percent_to_sigma(end); its residuals (hint
        prepared and the ControlNet run once per latent shape) are scaled by strength and summed with the
        earlier controls'. Raises ValueError when the hint does not fit the ControlNet.
        """
        from nodes.comfy.controlnet import residuals_for  # the computation lives with the nodes

        return residuals_for(self, tuple(x_shape), sigma, percent_to_sigma)


def entries(value: Any) -> list[list]:
    """A CONDITIONING value as ComfyUI's entry list (our TextEncode's Conditioning becomes one entry).

    Raises TypeError naming what arrived when it is neither.
    """
    if isinstance(value, T.Conditioning):
        pooled = value.pooled.reshape(value.pooled.shape[0], -1)
        return [[value.hidden, {"pooled_output": pooled}]]
    if isinstance(value, list) and all(isinstance(e, (list, tuple)) and len(e) == 2 and torch.is_tensor(e[0])
                                       and isinstance(e[1], dict) for e in value):
        return [[e[0], e[1]] for e in value]
    raise TypeError(f"expected CONDITIONING (a list of [tensor, dict] entries), got {type(value).__name__}")


def latent(value: Any, what: str = "latent") -> dict:
    """A LATENT dict, checked: {"samples": tensor [B,C,h,w], ...}. Raises TypeError naming the problem."""
    if not isinstance(value, dict) or not torch.is_tensor(value.get("samples")) or value["samples"].dim() != 4:
        raise TypeError(f"{what}: expected a LATENT (a dict with 'samples' [B,C,h,w]), got {type(value).__name__}")
    return value
