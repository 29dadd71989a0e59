"""Stage A: the VQGAN that maps RGB [0,1] images to 4-channel latents at 1/4 size (spec §1.4)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import Conv1x1, linear_add, linear_gelu, model_dtype, nchw, nhwc, to_channels_last


@dataclass(frozen=True)
class StageAConfig:
    """Constructor hyper-parameters; the defaults are the published 18.4M model."""
    levels: int = 2
    bottleneck_blocks: int = 12
    c_hidden: int = 384
    c_latent: int = 4
    codebook_size: int = 8192
    scale_factor: float = 0.43


STAGE_A_PRESETS: dict[str, StageAConfig] = {
    "full": StageAConfig(),
    "tiny": StageAConfig(bottleneck_blocks=1, c_hidden=32, codebook_size=64),
}


MLP_BAND_PIXELS = 1 << 14  # pixels per band of the Stage A MLP (16K: 50-100 MB of hidden activation in fp32)


class MixingResBlock(nn.Module):
    """Stage-A residual block: gamma-modulated LN, replicate-padded depthwise conv, MLP (no GRN)."""

    def __init__(self, c: int, c_hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(c, elementwise_affine=False, eps=1e-6)
        self.depthwise = nn.Sequential(nn.ReplicationPad2d(1), nn.Conv2d(c, c, kernel_size=3, groups=c))
        self.norm2 = nn.LayerNorm(c, elementwise_affine=False, eps=1e-6)
        self.channelwise = nn.Sequential(nn.Linear(c, c_hidden), nn.GELU(), nn.Linear(c_hidden, c))
        self.gammas = nn.Parameter(torch.zeros(6))

    def _mod_norm(self, x_nhwc: torch.Tensor, i: int) -> torch.Tensor:
        # LN(x) * (1 + g_i) + g_{i+1}, folded into the LayerNorm's affine arguments.
        c = x_nhwc.shape[-1]
        g = self.gammas
        return F.layer_norm(x_nhwc, (c,), (g[i] + 1).expand(c).contiguous(), g[i + 1].expand(c).contiguous(),
                            1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + dw(LN1 x)*g2, then + MLP(LN2 x)*g5."""
        x = to_channels_last(x)
        g = self.gammas
        h = self.depthwise(nchw(self._mod_norm(nhwc(x), 0)))
        x = torch.addcmul(nhwc(x), nhwc(h), g[2])
        lin0, lin2 = self.channelwise[0], self.channelwise[2]
        w2, b2 = lin2.weight * g[5], lin2.bias * g[5]  # g5 folded into the small weight so the add fuses
        # The MLP is per pixel, so it runs over bands of rows: at 1024² the 4c-wide hidden activation
        # of the last level alone would be 0.8 GB in fp32, the peak of the whole pipeline.
        rows = max(1, MLP_BAND_PIXELS // x.shape[2])
        if x.shape[1] <= rows:
            return nchw(linear_add(linear_gelu(self._mod_norm(x, 3), lin0.weight, lin0.bias), w2, b2, x))
        out = torch.empty_like(x)
        for start in range(0, x.shape[1], rows):
            band = x[:, start:start + rows]
            h = linear_gelu(self._mod_norm(band, 3), lin0.weight, lin0.bias)
            out[:, start:start + rows] = linear_add(h, w2, b2, band)
        return nchw(out)


class VectorQuantizer(nn.Module):
    """Nearest-codebook-entry quantiser (training/reconstruction only; not on the generation path)."""

    def __init__(self, c_latent: int, k: int):
        super().__init__()
        self.codebook = nn.Embedding(k, c_latent)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B,C,H,W] -> (quantised z, indices [B,H,W]) by L2 distance."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        e = self.codebook.weight.to(flat.dtype)
        dist = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1)[None] - 2 * flat @ e.t()
        idx = dist.argmin(dim=1)
        q = e[idx].view(b, h, w, c).permute(0, 3, 1, 2)
        return q, idx.view(b, h, w)


class StageA(nn.Module):
    """VQGAN encoder/decoder; latents exchanged with Stage B are raw_z / scale_factor."""

    def __init__(self, config: StageAConfig = StageAConfig()):
        super().__init__()
        self.config = cfg = config
        c_levels = [cfg.c_hidden // (2 ** i) for i in reversed(range(cfg.levels))]
        self.in_block = nn.Sequential(nn.PixelUnshuffle(2), Conv1x1(3 * 4, c_levels[0]))
        down: list[nn.Module] = []
        for i in range(cfg.levels):
            if i > 0:
                down.append(nn.Conv2d(c_levels[i - 1], c_levels[i], kernel_size=4, stride=2, padding=1))
            down.append(MixingResBlock(c_levels[i], c_levels[i] * 4))
        down.append(nn.Sequential(Conv1x1(c_levels[-1], cfg.c_latent, bias=False), nn.BatchNorm2d(cfg.c_latent)))
        self.down_blocks = nn.Sequential(*down)
        self.vquantizer = VectorQuantizer(cfg.c_latent, cfg.codebook_size)
        up: list[nn.Module] = [nn.Sequential(Conv1x1(cfg.c_latent, c_levels[-1]))]
        for i in range(cfg.levels):
            c = c_levels[cfg.levels - 1 - i]
            for _ in range(cfg.bottleneck_blocks if i == 0 else 1):
                up.append(MixingResBlock(c, c * 4))
            if i < cfg.levels - 1:
                up.append(nn.ConvTranspose2d(c, c_levels[cfg.levels - 2 - i], kernel_size=4, stride=2, padding=1))
        self.up_blocks = nn.Sequential(*up)
        self.out_block = nn.Sequential(Conv1x1(c_levels[0], 3 * 4), nn.PixelShuffle(2))

    def encode_raw(self, img01: torch.Tensor) -> torch.Tensor:
        """RGB [0,1] -> unscaled latent z (what diffusers' PaellaVQModel.encode returns)."""
        x = to_channels_last(img01.to(model_dtype(self)))
        return self.down_blocks(self.in_block(x)).contiguous()

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latent z -> RGB, not clamped (diffusers' decode with force_not_quantize)."""
        x = to_channels_last(z.to(model_dtype(self)))
        return self.out_block(self.up_blocks(x)).contiguous()

    def encode(self, img01: torch.Tensor) -> torch.Tensor:
        """RGB [B,3,H,W] in [0,1] -> latent [B,4,H/4,W/4] already divided by the scale factor."""
        return (self.encode_raw(img01) / self.config.scale_factor).to(img01.dtype)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent (as Stage B produces it) -> RGB in [0,1], clamped, in the latent's dtype."""
        return self.decode_raw(latent * self.config.scale_factor).clamp(0, 1).to(latent.dtype)

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        """Snap a scaled latent to the codebook (reconstruction use only)."""
        q, _ = self.vquantizer(latent * self.config.scale_factor)
        return q / self.config.scale_factor
