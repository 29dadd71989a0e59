"""Non-destructive weight patching: a module plus low-rank deltas, merged only while in use.

A `ModelHandle` is what model sockets carry between nodes. Adding a LoRA returns a *new* handle
that shares the same module, so nothing another node holds is ever changed outside `applied()`;
inside it the deltas are added in place and the exact original tensors are put back on exit.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn


@dataclass(frozen=True, eq=False)
class LowRankDelta:
    """ΔW = scale · up @ [mid ∘] down, reshaped to the target; added to rows [row_start:row_stop] only.

    Kept factorised (a few MB) until `applied()` merges it, so a handle with many LoRAs stays cheap.
    `dora_scale` turns it into a DoRA patch (the direction is renormalised against the base weight).
    """

    up: torch.Tensor  # [out, r] or [out, r, 1, 1]
    down: torch.Tensor  # [r, in] or [r, in, kh, kw]
    scale: float = 1.0  # alpha / rank
    mid: torch.Tensor | None = None  # LoCon/Tucker core [r, r, kh, kw]
    dora_scale: torch.Tensor | None = None
    row_start: int = 0
    row_stop: int | None = None  # None: every row

    def rows(self, weight_rows: int) -> slice:
        """The slice of the target's first axis this delta covers."""
        return slice(self.row_start, weight_rows if self.row_stop is None else self.row_stop)

    def dense(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """The float32 ΔW (without strength) shaped like the covered part of the target."""
        up = self.up.to(device=device, dtype=torch.float32).flatten(1)
        down = self.down.to(device=device, dtype=torch.float32)
        if self.mid is not None:
            mid = self.mid.to(device=device, dtype=torch.float32)
            # Tucker: ΔW[o, i, k, l] = Σ up[o, a] · mid[a, b, k, l] · down[b, i]
            delta = torch.einsum("abkl,bi,oa->oikl", mid, down.flatten(1), up)
        else:
            delta = up @ down.flatten(1)
        return (delta * self.scale).reshape(shape)


@dataclass(frozen=True, eq=False)
class RowOffsets:
    """Dense additive offsets for selected rows (ReToken token-embedding offsets)."""

    indices: tuple[int, ...]
    values: torch.Tensor  # [len(indices), dim]

    def add_to(self, acc: torch.Tensor, strength: float) -> None:
        """Add strength · values to the given rows of a float32 accumulator."""
        idx = torch.tensor(self.indices, device=acc.device, dtype=torch.long)
        acc.index_add_(0, idx, self.values.to(acc.device, torch.float32) * strength)


@dataclass(frozen=True)
class Patch:
    """One delta on one parameter (`key` is the full parameter name in `ModelHandle.module`)."""

    key: str
    delta: LowRankDelta | RowOffsets
    strength: float = 1.0
    source: str = ""  # which LoRA file it came from, for messages


@dataclass(frozen=True)
class ModelHandle:
    """A module plus the patches to merge while it runs. Never mutated; `with_patches` copies."""

    module: nn.Module
    patches: tuple[Patch, ...] = field(default=())

    def with_patches(self, patches: tuple[Patch, ...] | list[Patch]) -> "ModelHandle":
        """A new handle on the same module with `patches` appended."""
        return ModelHandle(self.module, self.patches + tuple(patches))

    def patched_keys(self) -> list[str]:
        """The distinct parameter names this handle changes, in first-patch order."""
        return list(dict.fromkeys(p.key for p in self.patches if p.strength != 0))


def _merged(base: torch.Tensor, patches: list[Patch]) -> torch.Tensor:
    """Base + Σ deltas, summed in float32 and rounded to the weight dtype once."""
    acc = base.detach().to(torch.float32, copy=True)
    dora: list[Patch] = []
    for p in patches:
        d = p.delta
        if isinstance(d, RowOffsets):
            d.add_to(acc, p.strength)
        elif d.dora_scale is not None:
            dora.append(p)  # needs the base weight, added after the plain deltas
        else:
            rows = d.rows(acc.shape[0])
            part = acc[rows]
            part.add_(d.dense(part.shape, acc.device), alpha=p.strength)
    base32 = base.detach().to(torch.float32) if dora else base
    for p in dora:
        acc[p.delta.rows(acc.shape[0])] += p.strength * _dora_delta(base32, p.delta)
    return acc.to(base.dtype)


def _dora_delta(base32: torch.Tensor, d: LowRankDelta) -> torch.Tensor:
    """DoRA: m · (W+ΔW)/‖W+ΔW‖ − W, with the norm taken along the axis `dora_scale` keeps."""
    w = base32[d.rows(base32.shape[0])]
    merged = w + d.dense(w.shape, w.device)
    m = d.dora_scale.to(w.device, torch.float32)
    # LyCORIS writes [1, in, …] for a per-input-column magnitude; PEFT ([out]) and LyCORIS wd_on_out
    # ([out, 1, …]) keep one magnitude per output row. Decided by layout, not size: square layers exist.
    per_column = m.dim() >= 2 and m.shape[0] == 1 and merged.shape[0] != 1
    if per_column:
        norm = merged.transpose(0, 1).reshape(merged.shape[1], -1).norm(dim=1)
        norm = norm.reshape(1, -1, *([1] * (merged.dim() - 2)))
    else:
        norm = merged.reshape(merged.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (merged.dim() - 1)))
    m = m.reshape(norm.shape)
    return merged * (m / (norm + torch.finfo(torch.float32).eps)) - w


class _PatchState:
    """Per-module bookkeeping (lock + active handle). Copies and pickles as a fresh, unpatched state,
    so `copy.deepcopy(module)` / `torch.save(module)` keep working after the module was patched."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active: ModelHandle | None = None

    def __deepcopy__(self, memo: dict) -> "_PatchState":
        return _PatchState()

    def __reduce__(self):
        return (_PatchState, ())


def _state_of(module: nn.Module) -> _PatchState:
    # Kept on the module itself (not in a global registry) so it lives exactly as long as the module.
    state = module.__dict__.get("_cascade_patch_state")
    if state is None:
        state = module.__dict__.setdefault("_cascade_patch_state", _PatchState())
    return state


@contextlib.contextmanager
def applied(handle: ModelHandle) -> Iterator[nn.Module]:
    """Merge the handle's patches into its module for the block; restore the originals bit for bit.

    Re-entering with the same handle on the same thread is a no-op; entering with different patches
    while the module is already patched is an error (the deltas would otherwise compound).
    """
    module = handle.module
    active = [p for p in handle.patches if p.strength != 0]
    if not active:
        yield module
        return
    state = _state_of(module)
    with state.lock:
        current = state.active
        if current is not None:
            if current.patches == handle.patches:
                yield module
                return
            raise RuntimeError("module is already patched by another handle; nested `applied` would compound")
        params = dict(module.named_parameters())
        grouped: dict[str, list[Patch]] = {}
        for p in active:
            if p.key not in params:
                raise KeyError(f"patch targets {p.key!r}, which is not a parameter of {type(module).__name__}")
            grouped.setdefault(p.key, []).append(p)
        backups: dict[str, torch.Tensor] = {}
        try:
            with torch.no_grad():
                for key, patches in grouped.items():
                    param = params[key]
                    backups[key] = param.detach().clone()
                    param.copy_(_merged(backups[key], patches))
            state.active = handle
            yield module
        finally:
            with torch.no_grad():
                for key, original in backups.items():
                    params[key].copy_(original)
            state.active = None
