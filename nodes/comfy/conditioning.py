"""ConditioningZeroOut, ConditioningCombine, StableCascade_StageB_Conditioning.

Entries are never mutated: each class copies the extras dict it changes (ComfyUI's rule too).
"""
from __future__ import annotations

import torch

from engine.schema import Input, Node, Output, RunContext
from nodes.comfy import types as C


class ConditioningZeroOut(Node):
    """Zeros every entry's tensor and its pooled_output, keeping the other extras (ComfyUI's negative for
    Stable Cascade's Stage B)."""

    TITLE = "ConditioningZeroOut"
    CATEGORY = "advanced/conditioning"
    INPUTS = (Input("conditioning", C.CONDITIONING, tooltip="the conditioning to zero"),)
    OUTPUTS = (Output("CONDITIONING", C.CONDITIONING, "the same entries, all zeros"),)

    def run(self, ctx: RunContext, conditioning) -> tuple:
        out = []
        for hidden, extras in C.entries(conditioning):
            extras = dict(extras)
            if torch.is_tensor(extras.get("pooled_output")):
                extras["pooled_output"] = torch.zeros_like(extras["pooled_output"])
            out.append([torch.zeros_like(hidden), extras])
        return (out,)


class ConditioningCombine(Node):
    """Both entry lists as one: the sampler predicts with each entry and averages the predictions."""

    TITLE = "Conditioning (Combine)"
    CATEGORY = "conditioning"
    INPUTS = (Input("conditioning_1", C.CONDITIONING, tooltip="the first conditioning"),
              Input("conditioning_2", C.CONDITIONING, tooltip="the second conditioning"))
    OUTPUTS = (Output("CONDITIONING", C.CONDITIONING, "the entries of both, first then second"),)

    def run(self, ctx: RunContext, conditioning_1, conditioning_2) -> tuple:
        return (C.entries(conditioning_1) + C.entries(conditioning_2),)


class StableCascade_StageB_Conditioning(Node):
    """Attach the Stage C latent to every entry as ``stable_cascade_prior`` (Stage B's effnet input)."""

    TITLE = "StableCascade_StageB_Conditioning"
    CATEGORY = "conditioning/stable_cascade"
    INPUTS = (Input("conditioning", C.CONDITIONING, tooltip="the prompt's conditioning"),
              Input("stage_c", C.LATENT, tooltip="the Stage C KSampler's latent"))
    OUTPUTS = (Output("CONDITIONING", C.CONDITIONING, "the entries, each carrying the Stage C latent"),)

    def run(self, ctx: RunContext, conditioning, stage_c) -> tuple:
        prior = C.latent(stage_c, "stage_c")["samples"]
        if prior.shape[1] != 16:
            raise ValueError(f"stage_c: expected a 16-channel Stage C latent, got {prior.shape[1]} channels "
                             "(is it the Stage B latent?)")
        out = []
        for hidden, extras in C.entries(conditioning):
            out.append([hidden, {**extras, "stable_cascade_prior": prior}])
        return (out,)


NODES: dict[str, type[Node]] = {
    "ConditioningZeroOut": ConditioningZeroOut,
    "ConditioningCombine": ConditioningCombine,
    "StableCascade_StageB_Conditioning": StableCascade_StageB_Conditioning,
}
