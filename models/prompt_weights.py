"""ComfyUI's prompt syntax for CLIP: `(words:1.3)` emphasis, `\\(` escapes, and 77-token chunks.

Written from ComfyUI's documented behaviour (comfy/sd1_clip.py, read, not copied), so a prompt gives the
same token ids and weights as ComfyUI's Stable Cascade tokenizer (CLIP-G, padded with the end token):

* Emphasis: `(text)` multiplies the weight of `text` by 1.1; `(text:w)` sets it to `w` (the number after
  the LAST colon; a colon at the very start, or text after it that is no number, leaves `(text)`'s ×1.1
  with the colon kept as text). Groups nest: `((a))` is 1.1·1.1, `((a):2)` is 2·1.1 (the outer group
  sets 2, the inner one multiplies it), `((a:2))` is 2 (the inner set weight replaces the outer ×1.1). `[text]` is plain text (ComfyUI has no de-emphasis brackets).
  `\\(` and `\\)` are literal parentheses. Unbalanced parentheses are kept as text.
* Segments: each run of text with one weight is tokenised as a whole (not word by word), and each such
  token group is a unit for chunking.
* Chunks: groups fill chunks of 75 tokens between a start and an end token, padded with the end token to
  77. A group that does not fit the current chunk moves whole to the next one if it is shorter than 8
  tokens, and is cut at the boundary otherwise.
* `embedding:name` (after whitespace or at the start of a segment) names a textual-inversion file. We have
  no embeddings folder, so, like ComfyUI for a missing file, the name is dropped (with any text glued to it
  by `<` or `[` and trailing commas kept) and the rest of the text is tokenised.
"""
from __future__ import annotations

import math
import re
from typing import Callable

from .tokenizer import BOS_ID, EOS_ID, MAX_LENGTH

Token = tuple[int, float]  # (token id, weight)
EMBEDDING_PREFIX = "embedding:"
LARGE_GROUP = 8  # groups this long may be cut at a chunk boundary; shorter ones move whole
_OPEN, _CLOSE = "\0\2", "\0\1"  # stand-ins for escaped parentheses while the groups are parsed


def _split_groups(text: str) -> list[str]:
    """Top-level pieces: plain text and whole `( ... )` groups (a `)` without its `(` stays text)."""
    pieces, current, depth = [], "", 0
    for char in text:
        if char == "(":
            if depth == 0 and current:
                pieces.append(current)
                current = ""
            current += char
            depth += 1
        elif char == ")":
            depth -= 1
            current += char
            if depth == 0:
                pieces.append(current)
                current = ""
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def _group_weight(inner: str) -> tuple[str, float | None]:
    """(text, set weight) of a group's inside: the number after the last colon, when there is one."""
    colon = inner.rfind(":")
    if colon > 0:
        try:
            return inner[:colon], float(inner[colon + 1:])
        except ValueError:
            pass
    return inner, None


def _weights(text: str, weight: float) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for piece in _split_groups(text):
        if len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
            inner, set_weight = _group_weight(piece[1:-1])
            out += _weights(inner, weight * 1.1 if set_weight is None else set_weight)
        else:
            out.append((piece, weight))
    return out


def parse_weights(text: str) -> list[tuple[str, float]]:
    """Prompt -> [(segment text, weight)] in order, escapes resolved. Weights are floats as written.

    Raises ValueError for a weight that is not finite (`(cat:inf)`, `(cat:nan)`): it would make the whole
    conditioning inf/NaN.
    """
    escaped = text.replace("\\)", _CLOSE).replace("\\(", _OPEN)
    out = []
    for segment, weight in _weights(escaped, 1.0):
        if not math.isfinite(weight):
            raise ValueError(f"prompt weight must be a finite number, got {weight} for {segment!r}")
        out.append((segment.replace(_CLOSE, ")").replace(_OPEN, "("), weight))
    return out


def _without_embedding(piece: str) -> str:
    """The text left of an `embedding:name...` piece once the (missing) embedding is dropped."""
    words = piece[len(EMBEDDING_PREFIX):].split()
    if not words:
        return ""
    name, rest = words[0], " ".join(words[1:])
    glued = re.search(r"[<\[]", name)
    if glued is not None:
        rest = name[glued.start():] + (" " + rest if rest else "")
        name = name[:glued.start()]
    stripped = name.strip(",")
    if len(stripped) < len(name):
        rest = f"{name[len(stripped):]} {rest}"
    return rest


def text_pieces(segment: str) -> list[str]:
    """A segment split before each `embedding:` that follows whitespace, missing embeddings dropped."""
    parts = re.split(r"(?<=\s)" + re.escape(EMBEDDING_PREFIX), segment)
    pieces = [parts[0]] + [EMBEDDING_PREFIX + p for p in parts[1:]]
    return [_without_embedding(p) if p.startswith(EMBEDDING_PREFIX) else p for p in pieces if p]


def token_groups(encode_text: Callable[[str], list[int]], text: str, emphasis: bool = True) -> list[list[Token]]:
    """Prompt -> token groups [[(id, weight), ...], ...] (no start/end tokens).

    encode_text: text -> BPE ids without special tokens. emphasis False reads the whole prompt as one
    segment of weight 1 (parentheses and backslashes are then plain text).
    """
    segments = parse_weights(text) if emphasis else [(text, 1.0)]
    groups = []
    for segment, weight in segments:
        for piece in text_pieces(segment) if emphasis else [segment]:
            ids = encode_text(piece) if piece else []
            groups.append([(int(t), weight) for t in ids])
    return groups


def _close(chunk: list[Token]) -> list[Token]:
    return chunk + [(EOS_ID, 1.0)] + [(EOS_ID, 1.0)] * (MAX_LENGTH - 1 - len(chunk))


def chunk_groups(groups: list[list[Token]]) -> list[list[Token]]:
    """Token groups -> chunks of exactly 77 (start, up to 75 tokens, end, end-token padding); >= 1 chunk."""
    room = MAX_LENGTH - 1  # the last position is kept for the end token
    chunks, chunk = [], [(BOS_ID, 1.0)]
    for group in groups:
        large = len(group) >= LARGE_GROUP
        while group:
            if len(chunk) + len(group) <= room:
                chunk += group
                break
            if large:
                take = room - len(chunk)
                chunk, group = chunk + group[:take], group[take:]
            chunks.append(_close(chunk))
            chunk = [(BOS_ID, 1.0)]
    chunks.append(_close(chunk))
    return chunks


def truncate_groups(groups: list[list[Token]]) -> list[list[Token]]:
    """Token groups -> one 77-token chunk holding the first 75 tokens (the official truncation)."""
    flat = [t for g in groups for t in g][:MAX_LENGTH - 2]
    return [_close([(BOS_ID, 1.0)] + flat)]
