"""One text-encoder pass for the prompts of sibling TextEncode nodes (the positive and the negative).

The default workflow encodes its prompt and its negative in two TextEncode nodes on one encoder. The
first of them to run also encodes the texts of the siblings that will still run in the same prompt
(RunContext.pending: same encoder link, a literal text, the official truncate/no-emphasis path), as one
batch; the siblings then take their rows from here instead of running the encoder again. A batch of
two costs the GPU about one pass's launches and weight reads instead of two. Cached siblings are
not encoded (they will not run), so editing only the positive prompt costs one text, as before.

Each row's result is the same as encoding it alone up to the batched matmuls' rounding (bitwise on this
CPU in float32 and bfloat16, tests/test_text_batch.py). Results are kept only for the prompt being
run and the very handle that made them, and handed out once.
"""
from __future__ import annotations

import threading
import weakref

import torch

from engine.schema import RunContext
from models.patching import ModelHandle

# At most this many texts in one pass (a graph with many encoders of one model stays bounded in memory).
MAX_BATCH = 8

_lock = threading.Lock()
_slot: dict = {"prompt_id": None, "handle": None, "rows": {}}


def sibling_texts(ctx: RunContext) -> list[str]:
    """Literal texts of the TextEncode nodes still to run that read the same encoder on the official path."""
    me = ctx.prompt.get(ctx.node_id, {}).get("inputs", {})
    link = me.get("text_encoder")
    texts = []
    for nid in sorted(ctx.pending):
        node = ctx.prompt.get(nid, {})
        inputs = node.get("inputs", {})
        if (node.get("class_type") == "TextEncode" and link is not None and inputs.get("text_encoder") == link
                and isinstance(inputs.get("text"), str) and inputs.get("long_prompts", "truncate") == "truncate"
                and inputs.get("emphasis", "off") == "off"):
            texts.append(inputs["text"])
    return texts


def take(ctx: RunContext, handle: ModelHandle, text: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The row a sibling encoded for `text` in this prompt with this handle (removed once taken), else None."""
    with _lock:
        if _slot["prompt_id"] != ctx.prompt_id or _slot["handle"] is None or _slot["handle"]() is not handle:
            return None
        return _slot["rows"].pop(text, None)


def encode(ctx: RunContext, handle: ModelHandle, encoder, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`text` encoded by `encoder` ([1,77,H], [1,1,P]); the pending siblings' texts in the same pass."""
    hit = take(ctx, handle, text)
    if hit is not None:
        return hit
    wanted = set(sibling_texts(ctx))  # a sibling with this very text takes a copy of this row too
    texts = list(dict.fromkeys([text, *sorted(wanted)]))[:MAX_BATCH]
    hidden, pooled = encoder.encode(texts)
    rows = {t: (hidden[i:i + 1].clone(), pooled[i:i + 1].clone()) for i, t in enumerate(texts) if t in wanted}
    with _lock:
        _slot.update(prompt_id=ctx.prompt_id, handle=weakref.ref(handle), rows=rows)
    return hidden[0:1], pooled[0:1]
