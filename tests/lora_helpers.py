"""Shared helpers for the LoRA tests: tiny non-zero models and LoRA files written in each format."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from models.stage_b import STAGE_B_PRESETS, StageB
from models.stage_c import STAGE_C_PRESETS, StageC
from models.text_encoder import TEXT_ENCODER_PRESETS, TextEncoder


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Overwrite every parameter with non-zero noise (official init zeroes output layers)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return module.eval()


def tiny_stage_c(seed: int = 0) -> StageC:
    return randomise(StageC(STAGE_C_PRESETS["tiny"]), seed)


def tiny_stage_b(seed: int = 0) -> StageB:
    return randomise(StageB(STAGE_B_PRESETS["tiny"]), seed)


def tiny_text_encoder(seed: int = 0) -> TextEncoder:
    return randomise(TextEncoder(TEXT_ENCODER_PRESETS["tiny"]), seed)


def factors(out: int, cols: tuple[int, ...], rank: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (up [out, rank], down [rank, *cols])."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(out, rank, generator=gen), torch.randn(rank, *cols, generator=gen)


def save(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    save_file({k: v.contiguous().clone() for k, v in tensors.items()}, str(path))
    return path


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_bit_identical(module: torch.nn.Module, snap: dict[str, torch.Tensor]) -> None:
    for k, v in module.state_dict().items():
        assert torch.equal(v, snap[k]), k
        assert v.dtype == snap[k].dtype, k


def stage_c_inputs(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(x, r, clip_text, clip_text_pooled, clip_img) for the tiny Stage C."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 16, 4, 4, generator=gen), torch.tensor([0.5]), torch.randn(1, 77, 32, generator=gen),
            torch.randn(1, 1, 32, generator=gen), torch.randn(1, 1, 768, generator=gen))
