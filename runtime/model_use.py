"""Helpers shared by the nodes that run models: residency + LoRA patches + no-grad in one place."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

from models.patching import ModelHandle, applied


@contextlib.contextmanager
def using(env: Any, handle: ModelHandle) -> Iterator[nn.Module]:
    """Make the handle's module resident (pinned for the block), merge its patches, run without autograd."""
    with env.models.use(handle.module), torch.no_grad(), applied(handle) as module:
        yield module


def module_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter (fp32 if it has none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (CPU if it has none)."""
    for p in module.parameters():
        return p.device
    return torch.device("cpu")



def item_seeds(seed: int, batch: int) -> list[int]:
    """Seed of each batch item (seed + i, wrapped into the 64-bit range torch generators accept)."""
    return [(seed + i) % (1 << 64) for i in range(batch)]
