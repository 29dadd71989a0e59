"""Seeded noise: one CPU generator per batch item, so a batch never changes an item's noise.

Rule: image i of a batch sees exactly the noise of a batch-1 run seeded ``seeds[i]`` — its initial
noise and every later per-step (ancestral/SDE/DDPM) draw. Noise is drawn on the CPU in float32 and
moved to the device, so CPU and GPU runs start from bit-identical noise.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def batch_seeds(seed: int, count: int) -> list[int]:
    """Seeds for a batch of ``count`` images from one widget seed: seed, seed+1, ... ."""
    return [seed + i for i in range(count)]


class SeededNoise:
    """A per-item stream of standard-normal tensors; each call returns the next draw for the batch."""

    def __init__(self, seeds: Sequence[int], item_shape: Sequence[int], device: torch.device | str = "cpu"):
        if len(seeds) == 0:
            raise ValueError("need at least one seed")
        self.item_shape = tuple(int(s) for s in item_shape)
        self.device = torch.device(device)
        self.draws = 0
        self._generators = []
        for seed in seeds:
            gen = torch.Generator(device="cpu")
            gen.manual_seed(int(seed))
            self._generators.append(gen)

    @property
    def batch_size(self) -> int:
        return len(self._generators)

    def __call__(self) -> torch.Tensor:
        """The next [B, *item_shape] float32 draw, on the target device."""
        self.draws += 1
        items = [torch.randn(self.item_shape, generator=g, dtype=torch.float32) for g in self._generators]
        return torch.stack(items).to(self.device)
