"""Measure peak activation memory of one guided network call (CPU RSS high-water mark) for admission.

    python bench/activation_peaks.py

Each network is built with its preset's channel widths but one block per level (peak activations in
no-grad inference depend on the widths and the map sizes, not on the depth), run once on a batch of 2
(cond + uncond), and the rise of VmHWM over the pre-call RSS is printed per latent pixel and item.
Results feed runtime/admission.py (its docstring lists the numbers measured on the development box).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_of(fn) -> int:
    """Bytes the call added on top of the RSS before it (Linux: clear_refs 5 resets the high-water mark)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    fn()
    return _status("VmHWM") - before


def main() -> None:
    from models.stage_a import STAGE_A_PRESETS, StageA
    from models.stage_b import STAGE_B_PRESETS, StageB
    from models.stage_c import STAGE_C_PRESETS, StageC

    torch.set_num_threads(2)
    with torch.no_grad():
        cfg = dataclasses.replace(STAGE_B_PRESETS["lite"], blocks=((1, 1, 1, 1), (1, 1, 1, 1)),
                                  block_repeat=((1, 1, 1, 1), (1, 1, 1, 1)))
        net = StageB(cfg).to(torch.bfloat16).eval()
        for side in (32, 64):
            x = torch.randn(2, 4, side, side)
            eff, clip = torch.randn(2, 16, 12, 12), torch.randn(2, 1, 1280)
            p = peak_of(lambda: net(x, torch.full((2,), 0.5), eff, clip))
            print(f"stage_b lite bf16 latent {side}^2 batch 2: {p / 2**20:.1f} MiB = {p / (2 * side * side):.0f} B/px/item")
        del net
        cfg = dataclasses.replace(STAGE_C_PRESETS["lite"], blocks=((1, 1), (1, 1)))
        net = StageC(cfg).to(torch.bfloat16).eval()
        for side in (24, 48):
            x = torch.randn(2, 16, side, side)
            p = peak_of(lambda: net(x, torch.full((2,), 0.5), torch.randn(2, 77, 1280), torch.randn(2, 1, 1280)))
            print(f"stage_c lite bf16 latent {side}^2 batch 2: {p / 2**20:.1f} MiB = {p / (2 * side * side):.0f} B/px/item")
        del net
        net = StageA(STAGE_A_PRESETS["full"]).eval()
        for side in (64, 128):
            z = torch.randn(1, 4, side, side)
            p = peak_of(lambda: net.decode(z))
            print(f"stage_a full fp32 decode latent {side}^2 batch 1: {p / 2**20:.1f} MiB = {p / (side * side):.0f} B/px/item")


if __name__ == "__main__":
    main()
