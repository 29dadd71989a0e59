"""TextEncode: prompt text → CONDITIONING (last hidden states + pooled embedding)."""
from __future__ import annotations

from engine.schema import Input, Node, Output, RunContext
from models.patching import ModelHandle
from nodes import types as T
from runtime.model_use import using


class TextEncode(Node):
    """Encode a prompt with the CLIP text encoder (an empty prompt is encoded like any other)."""

    TITLE = "Text Encode"
    CATEGORY = "stable_cascade/conditioning"
    INPUTS = (
        Input("text_encoder", T.TEXT_ENCODER, tooltip="the CLIP ViT-bigG text encoder"),
        Input("text", T.STRING, default="", multiline=True,
              tooltip="the prompt; 77 tokens at most (longer prompts are truncated, as officially)"),
    )
    OUTPUTS = (Output("conditioning", T.CONDITIONING, "hidden states [1,77,1280] + pooled [1,1,1280]"),)

    def run(self, ctx: RunContext, text_encoder: ModelHandle, text: str) -> tuple:
        with using(ctx.env, text_encoder) as encoder:
            hidden, pooled = encoder.encode([text])
        if pooled.dim() == 2:
            pooled = pooled.unsqueeze(1)
        return (T.Conditioning(hidden.detach().clone(), pooled.detach().clone()),)
