"""EfficientNet-V2-S feature encoder (image -> Stage C latent), spec §1.5.

Written here with torchvision's exact module layout (`backbone.N.M.block.K...`) so the official
`effnet_encoder.safetensors` loads as is; torchvision itself is not a dependency.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import model_dtype

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPS = 1e-3  # torchvision's EfficientNet-V2 uses BatchNorm eps 1e-3


@dataclass(frozen=True)
class StageSpec:
    """One torchvision stage: block type, expansion, stride, channels in/out, number of layers."""
    fused: bool
    expand: int
    stride: int
    c_in: int
    c_out: int
    layers: int


@dataclass(frozen=True)
class EffNetConfig:
    """Stem width, stages, head width, and the Stage C latent width."""
    stem: int = 24
    stages: tuple[StageSpec, ...] = (
        StageSpec(True, 1, 1, 24, 24, 2), StageSpec(True, 4, 2, 24, 48, 4), StageSpec(True, 4, 2, 48, 64, 4),
        StageSpec(False, 4, 2, 64, 128, 6), StageSpec(False, 6, 1, 128, 160, 9),
        StageSpec(False, 6, 2, 160, 256, 15),
    )
    head: int = 1280
    c_latent: int = 16


EFFNET_PRESETS: dict[str, EffNetConfig] = {
    "full": EffNetConfig(),
    "tiny": EffNetConfig(stem=8, stages=(
        StageSpec(True, 1, 1, 8, 8, 1), StageSpec(True, 2, 2, 8, 8, 1), StageSpec(True, 2, 2, 8, 16, 1),
        StageSpec(False, 2, 2, 16, 16, 1), StageSpec(False, 2, 1, 16, 16, 1), StageSpec(False, 2, 2, 16, 24, 2),
    ), head=32),
}


def conv_bn_act(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """torchvision Conv2dNormActivation: conv (no bias), BatchNorm, optional SiLU."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out, eps=BN_EPS)]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention with keys fc1/fc2 (1x1 convs), SiLU then sigmoid."""

    def __init__(self, c: int, c_squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c_squeeze, 1)
        self.fc2 = nn.Conv2d(c_squeeze, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale x by a per-channel gate computed from its spatial mean."""
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.nn.functional.silu(self.fc1(s))))


class MBConv(nn.Module):
    """(Fused-)MBConv block; `block` is a Sequential so keys read `block.K....`."""

    def __init__(self, spec: StageSpec, c_in: int, stride: int):
        super().__init__()
        c_exp = c_in * spec.expand
        self.use_res = stride == 1 and c_in == spec.c_out
        layers: list[nn.Module] = []
        if spec.fused:
            if c_exp != c_in:
                layers += [conv_bn_act(c_in, c_exp, 3, stride), conv_bn_act(c_exp, spec.c_out, 1, act=False)]
            else:
                layers += [conv_bn_act(c_in, spec.c_out, 3, stride)]
        else:
            layers += [conv_bn_act(c_in, c_exp, 1), conv_bn_act(c_exp, c_exp, 3, stride, groups=c_exp),
                       SqueezeExcitation(c_exp, max(1, c_in // 4)), conv_bn_act(c_exp, spec.c_out, 1, act=False)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output, plus the input when shapes allow (stochastic depth is identity in eval)."""
        y = self.block(x)
        return y + x if self.use_res else y


class EffNetEncoder(nn.Module):
    """RGB [0,1] image -> Stage C latent [B,16,H/32,W/32]; ImageNet normalisation is applied inside."""

    def __init__(self, config: EffNetConfig = EffNetConfig()):
        super().__init__()
        self.config = cfg = config
        features: list[nn.Module] = [conv_bn_act(3, cfg.stem, 3, 2)]
        for spec in cfg.stages:
            features.append(nn.Sequential(*[
                MBConv(spec, spec.c_in if i == 0 else spec.c_out, spec.stride if i == 0 else 1)
                for i in range(spec.layers)]))
        features.append(conv_bn_act(cfg.stages[-1].c_out, cfg.head, 1))
        self.backbone = nn.Sequential(*features)
        self.mapper = nn.Sequential(nn.Conv2d(cfg.head, cfg.c_latent, 1, bias=False),
                                    nn.BatchNorm2d(cfg.c_latent, affine=False))

    def forward(self, img01: torch.Tensor) -> torch.Tensor:
        """Normalise with ImageNet mean/std, run the backbone and the BatchNorm-ed 1x1 mapper."""
        dtype = model_dtype(self)
        mean = torch.tensor(IMAGENET_MEAN, device=img01.device, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=img01.device, dtype=torch.float32).view(1, 3, 1, 1)
        x = ((img01.float() - mean) / std).to(dtype).contiguous(memory_format=torch.channels_last)
        return self.mapper(self.backbone(x)).contiguous().to(img01.dtype)
