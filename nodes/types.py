"""Socket type names and the small value types that travel along links between Stable Cascade nodes."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.schema import BOOLEAN, COMBO, FLOAT, INT, STRING  # noqa: F401  (re-exported widget types)

# Model sockets: each stage has its own type so the editor and validation refuse swapped files
# (the most common ComfyUI Stable Cascade mistake: "expected 16 channels, got 4").
STAGE_C = "STAGE_C"
STAGE_B = "STAGE_B"
STAGE_A = "STAGE_A"
TEXT_ENCODER = "TEXT_ENCODER"
EFFNET = "EFFNET"
PREVIEWER = "PREVIEWER"

# Data sockets.
CONDITIONING = "CONDITIONING"
STAGE_C_LATENT = "STAGE_C_LATENT"
STAGE_B_LATENT = "STAGE_B_LATENT"  # a StageBLatent (a bare [B,4,h,w] tensor from custom nodes is accepted)
IMAGE = "IMAGE"  # float32 [B, H, W, 3] in [0, 1] (ComfyUI's layout, so image nodes stay familiar)



@dataclass(frozen=True)
class Conditioning:
    """Text conditioning: last hidden states [B,77·k,1280] (before final LN; k chunks of a long prompt) and pooled [B,1,1280]."""

    hidden: torch.Tensor
    pooled: torch.Tensor

    def repeat_to(self, batch: int) -> "Conditioning":
        """Repeat a batch-1 conditioning to `batch` items (num_images_per_prompt semantics)."""
        if self.hidden.shape[0] == batch:
            return self
        if self.hidden.shape[0] != 1:
            raise ValueError(f"conditioning batch {self.hidden.shape[0]} does not match latent batch {batch}")
        return Conditioning(self.hidden.expand(batch, -1, -1), self.pooled.expand(batch, -1, -1))


@dataclass(frozen=True)
class StageCLatent:
    """A Stage C latent [B,16,h,w] plus the pixel size it stands for (Stage B derives its grid from it)."""

    samples: torch.Tensor
    height: int
    width: int


@dataclass(frozen=True)
class StageBLatent:
    """A Stage B latent [B,4,h,w] plus the pixel size it stands for.

    The grid may be larger than height/4 x width/4 (rounded up to Stage B's patch size); Stage A
    decodes it to 4h x 4w and crops to height x width, so every requested size comes out exactly.
    """

    samples: torch.Tensor
    height: int
    width: int



def as_conditioning(value: object) -> Conditioning:
    """Our samplers' view of a CONDITIONING value: a Conditioning as is, or ComfyUI's entry list when it is
    one plain entry (hidden [B,N,1280] and `pooled_output` [B,1280], nothing else).

    Raises ValueError naming what a ComfyUI list carries that our samplers cannot use (several entries,
    a Stage C prior, image embeds, ControlNets): those go to KSampler.
    """
    if isinstance(value, Conditioning):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (list, tuple)) and len(value[0]) == 2:
        hidden, extras = value[0]
        extra = sorted(k for k in extras if k != "pooled_output") if isinstance(extras, dict) else ["?"]
        pooled = extras.get("pooled_output") if isinstance(extras, dict) else None
        if not extra and torch.is_tensor(hidden) and torch.is_tensor(pooled):
            return Conditioning(hidden, pooled.reshape(pooled.shape[0], 1, -1))
        raise ValueError(f"this CONDITIONING carries {', '.join(extra) or 'no pooled_output'}, which only "
                         "ComfyUI's KSampler uses; connect it to a KSampler")
    if isinstance(value, list):
        raise ValueError(f"this CONDITIONING holds {len(value)} entries (ConditioningCombine); our samplers take "
                         "one prompt; use a KSampler")
    raise TypeError(f"expected CONDITIONING, got {type(value).__name__}")
