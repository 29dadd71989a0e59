"""TextEncode: prompt text → CONDITIONING (last hidden states + pooled embedding)."""
from __future__ import annotations

from engine.schema import Input, Node, Output, RunContext
from models.patching import ModelHandle
from models.text_encoder import LONG_PROMPTS
from nodes import text_batch
from nodes import types as T
from runtime.model_use import using

EMPHASIS = ("off", "comfy")


class TextEncode(Node):
    """Encode a prompt with the CLIP text encoder (an empty prompt is encoded like any other).

    The defaults keep the official behaviour (truncation at 77 tokens, no emphasis syntax), so saved
    workflows give the same images; `long_prompts` chunk and `emphasis` comfy give ComfyUI's
    CLIPTextEncode semantics (see models/prompt_weights.py).
    """

    TITLE = "Text Encode"
    CATEGORY = "stable_cascade/conditioning"
    INPUTS = (
        Input("text_encoder", T.TEXT_ENCODER, tooltip="the CLIP ViT-bigG text encoder"),
        Input("text", T.STRING, default="", multiline=True,
              tooltip="the prompt; see long_prompts for prompts over 75 tokens"),
        Input("long_prompts", T.COMBO, default="truncate", choices=LONG_PROMPTS, optional=True,
              tooltip="truncate: keep the first 75 tokens, as officially; chunk: encode every 75 tokens "
                      "as a 77-token chunk and join them (ComfyUI's rule)"),
        Input("emphasis", T.COMBO, default="off", choices=EMPHASIS, optional=True,
              tooltip="off: parentheses are plain text; comfy: (words:1.3) sets a weight, (words) "
                      "multiplies it by 1.1, \\( is a literal parenthesis (ComfyUI's syntax)"),
    )
    OUTPUTS = (Output("conditioning", T.CONDITIONING, "hidden states [1,77·k,1280] + pooled [1,1,1280]"),)

    def run(self, ctx: RunContext, text_encoder: ModelHandle, text: str, long_prompts: str = "truncate",
            emphasis: str = "off") -> tuple:
        if long_prompts not in LONG_PROMPTS or emphasis not in EMPHASIS:
            raise ValueError(f"long_prompts must be one of {LONG_PROMPTS} and emphasis one of {EMPHASIS}, "
                             f"got {long_prompts!r} and {emphasis!r}")
        with using(ctx.env, text_encoder) as encoder:
            if long_prompts == "truncate" and emphasis == "off":
                # The official path through the tokenizer's own truncation, batched with the siblings'
                # texts still to run (the negative prompt): one encoder pass for both.
                hidden, pooled = text_batch.encode(ctx, text_encoder, encoder, text)
            else:
                hidden, pooled = encoder.encode_prompt(text, long_prompts, emphasis == "comfy", clean=True)
        if pooled.dim() == 2:
            pooled = pooled.unsqueeze(1)
        return (T.Conditioning(hidden.detach().clone(), pooled.detach().clone()),)
