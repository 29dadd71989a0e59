"""Stable Cascade ControlNet (spec §6): a control image -> residuals added to Stage C before chosen ResBlocks.

Module layout follows the official `modules/controlnet.py`, so the released files load as they are:
`backbone` is torchvision's EfficientNet-V2-S `features` (built from models/effnet.py's blocks; the stem
conv is re-made for c_in != 3, with no padding, as the official code does) or the 'large' bottleneck
for the super-resolution ControlNet; `projections[i]` maps the features to Stage C's width for the
ResBlock ordinal `proj_blocks[i]`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import model_dtype
from .effnet import BN_EPS, EFFNET_PRESETS, EffNetConfig, MBConv, conv_bn_act

OFFICIAL_PROJ_BLOCKS = (0, 4, 8, 12, 51, 55, 59, 63)  # ComfyUI assumes these for every Cascade ControlNet
BOTTLENECKS = ("effnet", "large")


@dataclass(frozen=True)
class ControlNetConfig:
    """c_in: control image channels; c_proj: Stage C width; proj_blocks: ResBlock ordinals fed.

    `large_*` size the 'large' bottleneck (conv1x1 c_in->large_expand, ->large_mid, n x res block, ->head).
    """
    c_in: int = 1
    c_proj: int = 2048
    proj_blocks: tuple[int, ...] = OFFICIAL_PROJ_BLOCKS
    bottleneck: str = "effnet"
    effnet: EffNetConfig = EffNetConfig()
    large_expand: int = 16384
    large_mid: int = 1024
    large_blocks: int = 8
    head: int = 1280

    @property
    def compression(self) -> int:
        """Control image pixels per Stage C latent pixel (ComfyUI's compression_ratio)."""
        return 32 if self.bottleneck == "effnet" else 1

    @property
    def upscale_method(self) -> str:
        """How ComfyUI resizes the hint to compression x the latent size."""
        return "bilinear" if self.bottleneck == "effnet" else "nearest-exact"

    @property
    def min_hint_size(self) -> int:
        """Smallest hint side in pixels: the unpadded 3x3 stem (effnet, c_in != 3) needs 3; else 1."""
        return 3 if self.bottleneck == "effnet" and self.c_in != 3 else 1

    def check_hint(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError naming the problem unless shape is a hint [B, c_in, H, W] this ControlNet runs on."""
        if len(shape) != 4 or shape[1] != self.c_in:
            raise ValueError(f"ControlNet expects a control image [B,{self.c_in},H,W], got {tuple(shape)}")
        if min(shape[-2:]) < self.min_hint_size:
            raise ValueError(f"ControlNet: the control image is {shape[-1]}x{shape[-2]} pixels; this ControlNet "
                             f"needs at least {self.min_hint_size}x{self.min_hint_size}")


_TINY_EFFNET = EFFNET_PRESETS["tiny"]
_TINY = dict(c_proj=32, proj_blocks=(0, 1, 2, 3), head=_TINY_EFFNET.head, effnet=_TINY_EFFNET)  # tiny Stage C: 4 ResBlocks
CONTROLNET_PRESETS: dict[str, ControlNetConfig] = {
    "canny": ControlNetConfig(c_in=1),
    "rgb": ControlNetConfig(c_in=3),
    "inpainting": ControlNetConfig(c_in=4),
    "super_resolution": ControlNetConfig(c_in=16, bottleneck="large"),
    "tiny_canny": ControlNetConfig(c_in=1, **_TINY),
    "tiny_rgb": ControlNetConfig(c_in=3, **_TINY),
    "tiny_inpainting": ControlNetConfig(c_in=4, **_TINY),
    "tiny_super_resolution": ControlNetConfig(c_in=16, bottleneck="large", large_expand=64, large_mid=16, **_TINY),
}


class LayerNorm2dAffine(nn.LayerNorm):
    """LayerNorm over channels of [B,C,H,W] with weight and bias (eps 1e-5): the 'large' res blocks' norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNetResBlock(nn.Module):
    """x + [LN, GELU, conv3x3, LN, GELU, conv3x3](x)."""

    def __init__(self, c: int):
        super().__init__()
        self.blocks = nn.Sequential(LayerNorm2dAffine(c), nn.GELU(), nn.Conv2d(c, c, 3, padding=1),
                                    LayerNorm2dAffine(c), nn.GELU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks(x)


def effnet_backbone(cfg: EffNetConfig, c_in: int) -> nn.Sequential:
    """EfficientNet-V2 `features` whose stem takes c_in channels (padding 0 unless c_in == 3, as officially)."""
    if c_in == 3:
        stem = conv_bn_act(3, cfg.stem, 3, 2)
    else:
        stem = nn.Sequential(nn.Conv2d(c_in, cfg.stem, 3, 2, padding=0, bias=False),
                             nn.BatchNorm2d(cfg.stem, eps=BN_EPS), nn.SiLU(inplace=True))
    features: list[nn.Module] = [stem]
    for spec in cfg.stages:
        features.append(nn.Sequential(*[MBConv(spec, spec.c_in if i == 0 else spec.c_out, spec.stride if i == 0 else 1)
                                        for i in range(spec.layers)]))
    features.append(conv_bn_act(cfg.stages[-1].c_out, cfg.head, 1))
    return nn.Sequential(*features)


class ControlNet(nn.Module):
    """Control image [B,c_in,H,W] -> list indexed by Stage C ResBlock ordinal: [B,c_proj,H/32,W/32]
    (H,W for 'large') at each of proj_blocks, None elsewhere (length max(proj_blocks)+1)."""

    def __init__(self, config: ControlNetConfig = ControlNetConfig()):
        super().__init__()
        self.config = cfg = config
        if cfg.bottleneck == "effnet":
            self.backbone = effnet_backbone(cfg.effnet, cfg.c_in)
            c = cfg.effnet.head
        elif cfg.bottleneck == "large":
            self.backbone = nn.Sequential(
                nn.Conv2d(cfg.c_in, cfg.large_expand, 1), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(cfg.large_expand, cfg.large_mid, 1),
                *[CNetResBlock(cfg.large_mid) for _ in range(cfg.large_blocks)],
                nn.Conv2d(cfg.large_mid, cfg.head, 1))
            c = cfg.head
        else:
            raise ValueError(f"unknown ControlNet bottleneck {cfg.bottleneck!r}; expected one of {BOTTLENECKS}")
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
                          nn.Conv2d(c, cfg.c_proj, 1, bias=False))
            for _ in cfg.proj_blocks)

    def forward(self, hint: torch.Tensor) -> list[torch.Tensor | None]:
        """Run the backbone once and every projection; outputs are in the weights' dtype."""
        self.config.check_hint(tuple(hint.shape))  # a named error, not conv2d's on a too-small image
        p = next(self.parameters())
        feats = self.backbone(hint.to(device=p.device, dtype=model_dtype(self)))
        out: list[torch.Tensor | None] = [None] * (max(self.config.proj_blocks) + 1)
        for idx, proj in zip(self.config.proj_blocks, self.projections):
            out[idx] = proj(feats)
        return out
