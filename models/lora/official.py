"""The official StableCascade LoRA format: unnamed `weights.{i}` over the `.attn` layers, plus ReToken."""
from __future__ import annotations

import re

import torch
from torch import nn

from models.lora.mapping import TE, Models
from models.lora.names import Target, official_attn_targets, text_encoder_root
from models.lora.report import LoraReport
from models.lora.units import Unit
from models.patching import LowRankDelta, Patch, RowOffsets

_INDEX = re.compile(r"^weights\.(\d+)$")
RETOKEN_KEYS = ("embeddings.embeddings", "embeddings.indices")


def split_official(units: dict[str, Unit]) -> tuple[dict[int, Unit], list[Unit]]:
    """Official `weights.{i}` units by index, and every other unit."""
    official, rest = {}, []
    for name, unit in units.items():
        m = _INDEX.match(name)
        if m:
            official[int(m.group(1))] = unit
        else:
            rest.append(unit)
    return official, rest


def _fits(unit: Unit, target: Target) -> bool:
    down, up = unit.tensors.get("down"), unit.tensors.get("up")
    return (down is not None and up is not None and up.dim() == 2 and down.dim() == 2
            and up.shape[0] == target.shape[0] and down.shape[1] == target.shape[1])


def official_patches(found: dict[int, Unit], models: Models, report: LoraReport, source: str) -> list[Patch]:
    """Patches for the official format, matched to our `.attn` layers in official module order.

    Per attention block the official file holds two entries. The saved list follows `modules()` over
    the parametrized model, where the MultiheadAttention's `parametrizations` container is registered
    after its `out_proj` child, so out_proj's LoRA comes first (checked by a test that re-creates the
    official parametrization). Within each pair the entries are placed by shape (c rows vs 3c rows),
    which is unambiguous and also accepts files written in the other order.
    """
    all_keys = [k for i in sorted(found) for k in found[i].keys]
    if models.unet is None:
        report.add_unmatched(all_keys, "official-format LoRA for Stage C, but no Stage C is connected")
        return []
    targets = official_attn_targets(models.unet)
    if sorted(found) != list(range(len(targets))):
        report.add_unmatched(all_keys, f"official-format LoRA has {len(found)} layers but this "
                             f"{models.unet_kind} has {len(targets)} attention layers (other model size?)")
        return []
    patches: list[Patch] = []
    for start in range(0, len(targets), 2):
        pair_t = targets[start:start + 2]
        pair_u = [found[start + j] for j in range(len(pair_t))]
        if not all(_fits(u, t) for u, t in zip(pair_u, pair_t)):
            pair_u = pair_u[::-1]
        if not all(_fits(u, t) for u, t in zip(pair_u, pair_t)):
            report.add_unmatched([k for u in pair_u for k in u.keys],
                                 f"shapes do not fit {pair_t[0].key} / {pair_t[-1].key}")
            continue
        for unit, target in zip(pair_u, pair_t):
            rank = unit.tensors["down"].shape[0]  # official LoRA: alpha 1, scale alpha/rank
            delta = LowRankDelta(up=unit.tensors["up"], down=unit.tensors["down"], scale=1.0 / rank)
            patches.append(Patch(target.key, delta, models.strength_unet, source))
            report.count(models.unet_kind, len(unit.keys))
    return patches


def retoken_patches(state: dict[str, torch.Tensor], models: Models, report: LoraReport,
                    source: str) -> list[Patch]:
    """ReToken offsets on token-embedding rows; rows of tokens added in training cannot be applied."""
    values, indices = state[RETOKEN_KEYS[0]], state[RETOKEN_KEYS[1]]
    if models.text_encoder is None:
        report.add_unmatched(list(RETOKEN_KEYS), "ReToken token-embedding offsets, but no text encoder is connected")
        return []
    root, prefix = text_encoder_root(models.text_encoder)
    emb = root.get_input_embeddings() if hasattr(root, "get_input_embeddings") else None
    if not isinstance(emb, nn.Embedding):
        report.add_unmatched(list(RETOKEN_KEYS), "text encoder has no token-embedding table")
        return []
    key = next(n for n, p in models.text_encoder.named_parameters() if p is emb.weight)
    vocab, dim = emb.weight.shape
    ids = [int(i) for i in indices.flatten().tolist()]
    if values.dim() != 2 or values.shape[0] != len(ids) or values.shape[1] != dim:
        report.add_unmatched(list(RETOKEN_KEYS), f"ReToken offsets {tuple(values.shape)} do not fit the "
                             f"token embedding {[vocab, dim]}")
        return []
    known = [(n, i) for n, i in enumerate(ids) if 0 <= i < vocab]
    added = [i for i in ids if not 0 <= i < vocab]
    if added:
        report.notes.append(
            f"ReToken offsets for {len(added)} token(s) added to the vocabulary in training (ids "
            f"{', '.join(map(str, added[:8]))}) are NOT applied: the file does not store the token text, "
            "so the tokenizer cannot produce them (the LoRA's trigger word is not recognised)")
    if not known:
        report.add_unmatched(list(RETOKEN_KEYS), "ReToken offsets only for tokens missing from our vocabulary")
        return []
    rows = torch.tensor([n for n, _ in known])
    delta = RowOffsets(tuple(i for _, i in known), values[rows])
    report.count(TE, len(RETOKEN_KEYS))
    return [Patch(key, delta, models.strength_te, source)]
