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


SEED_RANGE = 1 << 64  # torch.Generator.manual_seed accepts 0 … 2**64-1


def comfy_initial_noise(shape: Sequence[int], seed: int, batch_index: Sequence[int] | None = None) -> torch.Tensor:
    """ComfyUI's starting noise (comfy/sample.py prepare_noise): float32 on the CPU, from ONE generator.

    Without batch_index: one randn draw of the whole [B, ...] shape, so item i depends on the batch size
    (unlike SeededNoise). With batch_index (a latent that went through a batch split): one [1, ...] draw per
    index 0 … max(batch_index) from the same generator, item j taking draw batch_index[j].
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) % SEED_RANGE)
    shape = tuple(int(s) for s in shape)
    if batch_index is None:
        return torch.randn(shape, generator=gen, dtype=torch.float32)
    index = [int(i) for i in batch_index]
    if len(index) != shape[0] or min(index, default=0) < 0:
        raise ValueError(f"batch_index {index} does not fit a batch of {shape[0]}")
    draws = [torch.randn((1, *shape[1:]), generator=gen, dtype=torch.float32) for _ in range(max(index) + 1)]
    return torch.cat([draws[i] for i in index])


class ComfyStepNoise:
    """ComfyUI's per-step noise (k_diffusion default_noise_sampler with the sampler's seed): one generator on
    the latent's device, seeded seed+1 on the CPU (so it does not repeat the starting noise) and seed
    elsewhere; each call draws the whole [B, ...] shape. On a GPU the numbers are that device's generator's,
    as in ComfyUI, so ancestral results follow the device there too.
    """

    def __init__(self, seed: int, shape: Sequence[int], device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.draws = 0
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed((int(seed) + (1 if self.device.type == "cpu" else 0)) % SEED_RANGE)

    def __call__(self) -> torch.Tensor:
        self.draws += 1
        return torch.randn(self.shape, generator=self._gen, dtype=self.dtype, device=self.device)
