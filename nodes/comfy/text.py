"""CLIPTextEncode: prompts chunked by 77 tokens, (words:1.2) emphasis, as ComfyUI's Stable Cascade CLIP-G."""
from __future__ import annotations

from engine.schema import STRING, Input, Node, Output, RunContext
from nodes.comfy import types as C
from runtime.model_use import using


class CLIPTextEncode(Node):
    """Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model
    towards generating specific images."""

    TITLE = "CLIP Text Encode (Prompt)"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Encodes a text prompt using a CLIP model into an embedding that can be used to guide the "
                   "diffusion model towards generating specific images.")
    INPUTS = (
        Input("text", STRING, multiline=True, tooltip="The text to be encoded."),
        Input("clip", C.CLIP, tooltip="The CLIP model used for encoding the text."),
    )
    OUTPUTS = (Output("CONDITIONING", C.CONDITIONING,
                      "A conditioning containing the embedded text used to guide the diffusion model."),)

    def run(self, ctx: RunContext, text: str, clip: C.Clip) -> tuple:
        """One entry [hidden float32 [1, 77·k, 1280], {"pooled_output": [1, 1280]}]; k chunks of 75 tokens.

        Raises TypeError when `clip` is not a CLIP (e.g. a checkpoint without a text encoder gave None),
        ValueError for a non-finite emphasis weight.
        """
        if not isinstance(clip, C.Clip):
            raise TypeError(f"clip input is invalid: {type(clip).__name__} (a checkpoint without a text "
                            "encoder gives no CLIP; load one with CLIPLoader)")
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        with using(ctx.env, clip.handle) as encoder:
            hidden, pooled = encoder.encode_prompt(text, long_prompts="chunk", emphasis=True, clean=False)
        return ([[hidden, {"pooled_output": pooled}]],)


NODES: dict[str, type[Node]] = {"CLIPTextEncode": CLIPTextEncode}
