"""Previewer: Stage C latent -> small RGB preview, x8 upscale (spec §1.6)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import model_dtype


@dataclass(frozen=True)
class PreviewerConfig:
    """Latent width, hidden width (halved after the first and second upsampling), output channels."""
    c_in: int = 16
    c_hidden: int = 512
    c_out: int = 3


PREVIEWER_PRESETS: dict[str, PreviewerConfig] = {
    "full": PreviewerConfig(),
    "tiny": PreviewerConfig(c_hidden=32),
}


class Previewer(nn.Module):
    """A plain Sequential `blocks.0..24`; every GELU is followed by an affine BatchNorm."""

    def __init__(self, config: PreviewerConfig = PreviewerConfig()):
        super().__init__()
        self.config = cfg = config
        c, c2, c4 = cfg.c_hidden, cfg.c_hidden // 2, cfg.c_hidden // 4

        def act(ch: int) -> list[nn.Module]:
            return [nn.GELU(), nn.BatchNorm2d(ch)]

        self.blocks = nn.Sequential(
            nn.Conv2d(cfg.c_in, c, 1), *act(c),
            nn.Conv2d(c, c, 3, padding=1), *act(c),
            nn.ConvTranspose2d(c, c2, 2, stride=2), *act(c2),
            nn.Conv2d(c2, c2, 3, padding=1), *act(c2),
            nn.ConvTranspose2d(c2, c4, 2, stride=2), *act(c4),
            nn.Conv2d(c4, c4, 3, padding=1), *act(c4),
            nn.ConvTranspose2d(c4, c4, 2, stride=2), *act(c4),
            nn.Conv2d(c4, c4, 3, padding=1), *act(c4),
            nn.Conv2d(c4, cfg.c_out, 1),
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent [B,16,h,w] -> RGB [B,3,8h,8w] clamped to [0,1], in the latent's dtype."""
        x = latent.to(model_dtype(self)).contiguous(memory_format=torch.channels_last)
        return self.blocks(x).clamp(0, 1).contiguous().to(latent.dtype)
