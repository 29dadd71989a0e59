"""Stage B: the decoder that turns Stage C latents into Stage A latents (spec §1.3)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import (Conv1x1, LayerNorm2d, linear_gelu, model_dtype, nchw, nhwc, r_embedding, resize_like,
                     to_channels_last)
from .unet_core import CascadeUNet


@dataclass(frozen=True)
class StageBConfig:
    """Constructor hyper-parameters; the defaults are the 1.5B model (code name "3B")."""
    c_in: int = 4
    c_out: int = 4
    c_r: int = 64
    patch_size: int = 2
    c_cond: int = 1280
    c_hidden: tuple[int, ...] = (320, 640, 1280, 1280)
    nhead: tuple[int, ...] = (-1, -1, 20, 20)
    blocks: tuple[tuple[int, ...], tuple[int, ...]] = ((2, 6, 28, 6), (6, 28, 6, 2))
    block_repeat: tuple[tuple[int, ...], tuple[int, ...]] = ((1, 1, 1, 1), (3, 3, 2, 2))
    level_config: tuple[str, ...] = ("CT", "CT", "CTA", "CTA")
    c_clip: int = 1280
    c_clip_seq: int = 4
    c_effnet: int = 16
    c_pixels: int = 3
    kernel_size: int = 3
    dropout: tuple[float, ...] = (0.0, 0.0, 0.1, 0.1)
    self_attn: bool = True
    t_conds: tuple[str, ...] = ("sca",)


STAGE_B_PRESETS: dict[str, StageBConfig] = {
    "full": StageBConfig(),
    "lite": StageBConfig(c_hidden=(320, 576, 1152, 1152), nhead=(-1, 9, 18, 18),
                         blocks=((2, 4, 14, 4), (4, 14, 4, 2)), block_repeat=((1, 1, 1, 1), (2, 2, 2, 2))),
    # Test/demo size: pooled width matches the "tiny" text encoder preset (projection 32).
    "tiny": StageBConfig(c_cond=32, c_hidden=(16, 16, 32, 32), nhead=(-1, -1, 2, 2),
                         blocks=((1, 1, 1, 1), (1, 1, 1, 1)), block_repeat=((1, 1, 1, 1), (2, 2, 1, 1)),
                         c_clip=32),
}


class CondMapper(nn.Sequential):
    """Conv1x1(c_in -> 4c), GELU, Conv1x1(4c -> c), LN2d; the first conv and GELU run fused."""

    def __init__(self, c_in: int, c: int):
        super().__init__(Conv1x1(c_in, c * 4), nn.GELU(), Conv1x1(c * 4, c), LayerNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a conditioning image [B,c_in,H,W] to [B,c,H,W] (stored channels-last)."""
        h = linear_gelu(nhwc(x), self[0].weight.flatten(1), self[0].bias)
        return self[3](self[2](nchw(h)))


class StageB(CascadeUNet):
    """Stage B decoder; forward returns the predicted noise eps for a Stage A latent."""

    def __init__(self, config: StageBConfig = StageBConfig()):
        super().__init__()
        self.config = cfg = config
        c0 = cfg.c_hidden[0]
        self.effnet_mapper = CondMapper(cfg.c_effnet, c0)
        self.pixels_mapper = CondMapper(cfg.c_pixels, c0)
        self.clip_mapper = nn.Linear(cfg.c_clip, cfg.c_cond * cfg.c_clip_seq)
        self.clip_norm = nn.LayerNorm(cfg.c_cond, elementwise_affine=False, eps=1e-6)
        self.embedding = nn.Sequential(
            nn.PixelUnshuffle(cfg.patch_size), Conv1x1(cfg.c_in * cfg.patch_size ** 2, c0), LayerNorm2d(c0))

        def down(i: int) -> nn.Module:
            return nn.Sequential(LayerNorm2d(cfg.c_hidden[i - 1]),
                                 nn.Conv2d(cfg.c_hidden[i - 1], cfg.c_hidden[i], kernel_size=2, stride=2))

        def up(i: int) -> nn.Module:
            return nn.Sequential(LayerNorm2d(cfg.c_hidden[i]),
                                 nn.ConvTranspose2d(cfg.c_hidden[i], cfg.c_hidden[i - 1], kernel_size=2, stride=2))

        self._build_levels(cfg, down, up)
        self.clf = nn.Sequential(
            LayerNorm2d(c0), Conv1x1(c0, cfg.c_out * cfg.patch_size ** 2), nn.PixelShuffle(cfg.patch_size))

    def clip_tokens(self, clip: torch.Tensor) -> torch.Tensor:
        """Pooled text embedding [B,1,C] or [B,C] -> 4 normalised tokens [B, 4, c_cond]."""
        if clip.dim() == 2:
            clip = clip[:, None]
        b, n = clip.shape[:2]
        return self.clip_norm(self.clip_mapper(clip).view(b, n * self.config.c_clip_seq, -1))

    def forward(self, x: torch.Tensor, r: torch.Tensor, effnet: torch.Tensor, clip: torch.Tensor,
                pixels: torch.Tensor | None = None, sca: torch.Tensor | None = None) -> torch.Tensor:
        """x [B,4,H/4,W/4], r [B] (or a scalar), effnet [B,16,h,w], clip [B,1,1280] -> eps in x's dtype."""
        dtype = model_dtype(self)
        in_dtype = x.dtype
        b = x.shape[0]
        r = torch.as_tensor(r, device=x.device)
        r = r.expand(b) if r.dim() == 0 else r
        r_embed = r_embedding(r, self.config.c_r)
        for name in self.config.t_conds:
            cond = sca if name == "sca" else None
            cond = torch.zeros_like(r) if cond is None else cond
            r_embed = torch.cat([r_embed, r_embedding(cond, self.config.c_r)], dim=1)
        r_embed = r_embed.to(dtype)
        clip_tok = self.clip_tokens(clip.to(dtype))
        if pixels is None:
            pixels = x.new_zeros(b, self.config.c_pixels, 8, 8)
        h = self.embedding(to_channels_last(x.to(dtype)))
        size = tuple(h.shape[-2:])
        effnet = resize_like(to_channels_last(effnet.to(dtype)), size)
        h = h + self.effnet_mapper(effnet)
        h = h + resize_like(self.pixels_mapper(to_channels_last(pixels.to(dtype))), size)
        h = self._up_decode(self._down_encode(h, r_embed, clip_tok), r_embed, clip_tok)
        return self.clf(h).contiguous().to(in_dtype)
