"""Stage C: the text-conditional prior that denoises 16-channel latents (spec §1.2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from .common import Conv1x1, LayerNorm2d, UpDownBlock2d, model_dtype, r_embedding, to_channels_last
from .unet_core import CascadeUNet, ControlFeed


@dataclass(frozen=True)
class StageCConfig:
    """Constructor hyper-parameters; the defaults are the 3.6B model."""
    c_in: int = 16
    c_out: int = 16
    c_r: int = 64
    patch_size: int = 1
    c_cond: int = 2048
    c_hidden: tuple[int, ...] = (2048, 2048)
    nhead: tuple[int, ...] = (32, 32)
    blocks: tuple[tuple[int, ...], tuple[int, ...]] = ((8, 24), (24, 8))
    block_repeat: tuple[tuple[int, ...], tuple[int, ...]] = ((1, 1), (1, 1))
    level_config: tuple[str, ...] = ("CTA", "CTA")
    c_clip_text: int = 1280
    c_clip_text_pooled: int = 1280
    c_clip_img: int = 768
    c_clip_seq: int = 4
    kernel_size: int = 3
    dropout: tuple[float, ...] = (0.1, 0.1)
    self_attn: bool = True
    t_conds: tuple[str, ...] = ("sca", "crp")
    switch_level: tuple[bool, ...] = (False,)


STAGE_C_PRESETS: dict[str, StageCConfig] = {
    "full": StageCConfig(),
    "lite": StageCConfig(c_cond=1536, c_hidden=(1536, 1536), nhead=(24, 24), blocks=((4, 12), (12, 4))),
    # Test/demo size: text widths match the "tiny" text encoder preset (hidden 32).
    "tiny": StageCConfig(c_cond=32, c_hidden=(32, 32), nhead=(2, 2), blocks=((1, 1), (1, 1)),
                         c_clip_text=32, c_clip_text_pooled=32),
}


class StageC(CascadeUNet):
    """Stage C prior; forward returns the predicted noise eps. Runs in bf16 or fp32, never fp16."""

    def __init__(self, config: StageCConfig = StageCConfig()):
        super().__init__()
        self.config = cfg = config
        c0 = cfg.c_hidden[0]
        self.clip_txt_mapper = nn.Linear(cfg.c_clip_text, cfg.c_cond)
        self.clip_txt_pooled_mapper = nn.Linear(cfg.c_clip_text_pooled, cfg.c_cond * cfg.c_clip_seq)
        self.clip_img_mapper = nn.Linear(cfg.c_clip_img, cfg.c_cond * cfg.c_clip_seq)
        self.clip_norm = nn.LayerNorm(cfg.c_cond, elementwise_affine=False, eps=1e-6)
        self.embedding = nn.Sequential(
            nn.PixelUnshuffle(cfg.patch_size), Conv1x1(cfg.c_in * cfg.patch_size ** 2, c0), LayerNorm2d(c0))

        def down(i: int) -> nn.Module:
            return nn.Sequential(LayerNorm2d(cfg.c_hidden[i - 1]), UpDownBlock2d(
                cfg.c_hidden[i - 1], cfg.c_hidden[i], mode="down", enabled=cfg.switch_level[i - 1]))

        def up(i: int) -> nn.Module:
            return nn.Sequential(LayerNorm2d(cfg.c_hidden[i]), UpDownBlock2d(
                cfg.c_hidden[i], cfg.c_hidden[i - 1], mode="up", enabled=cfg.switch_level[i - 1]))

        self._build_levels(cfg, down, up)
        self.clf = nn.Sequential(
            LayerNorm2d(c0), Conv1x1(c0, cfg.c_out * cfg.patch_size ** 2), nn.PixelShuffle(cfg.patch_size))

    def clip_tokens(self, clip_text: torch.Tensor, clip_text_pooled: torch.Tensor,
                    clip_img: torch.Tensor) -> torch.Tensor:
        """Conditioning tokens [B, 77·k + 4 + 4*n_img, c_cond] (k = text chunks); pooled/img may be [B,C] or [B,n,C]."""
        b, seq = clip_text.shape[0], self.config.c_clip_seq
        if clip_text_pooled.dim() == 2:
            clip_text_pooled = clip_text_pooled[:, None]
        if clip_img.dim() == 2:
            clip_img = clip_img[:, None]
        txt = self.clip_txt_mapper(clip_text)
        pooled = self.clip_txt_pooled_mapper(clip_text_pooled).view(b, clip_text_pooled.shape[1] * seq, -1)
        img = self.clip_img_mapper(clip_img).view(b, clip_img.shape[1] * seq, -1)
        return self.clip_norm(torch.cat([txt, pooled, img], dim=1))

    def forward(self, x: torch.Tensor, r: torch.Tensor, clip_text: torch.Tensor,
                clip_text_pooled: torch.Tensor, clip_img: torch.Tensor | None = None,
                sca: torch.Tensor | None = None, crp: torch.Tensor | None = None,
                cnet: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """x [B,16,h,w], r [B] (or a scalar) -> eps [B,16,h,w] in x's dtype (computed in the weights' dtype).

        clip_img None means no image conditioning: zeros [B,1,c_clip_img], as the official text-to-image path.
        cnet: ControlNet residuals indexed by ResBlock ordinal (down then up pass), each [B or 1, c, h', w'];
        entry n is resized (bilinear, align_corners) to x and added before the n-th ResBlock; None entries
        are skipped. None (the default) runs exactly as without a ControlNet.
        """
        dtype = model_dtype(self)
        if dtype == torch.float16:
            raise TypeError("Stage C must not run in float16: its activations overflow (NaN/black images). "
                            "Use bfloat16 or float32.")
        in_dtype = x.dtype
        r = torch.as_tensor(r, device=x.device)
        r = r.expand(x.shape[0]) if r.dim() == 0 else r
        if clip_img is None:
            clip_img = x.new_zeros(x.shape[0], 1, self.config.c_clip_img)
        r_embed = r_embedding(r, self.config.c_r)
        for name in self.config.t_conds:
            cond = {"sca": sca, "crp": crp}.get(name)
            cond = torch.zeros_like(r) if cond is None else cond
            r_embed = torch.cat([r_embed, r_embedding(cond, self.config.c_r)], dim=1)
        r_embed = r_embed.to(dtype)
        clip = self.clip_tokens(clip_text.to(dtype), clip_text_pooled.to(dtype), clip_img.to(dtype))
        h = self.embedding(to_channels_last(x.to(dtype)))
        feed = ControlFeed(cnet) if cnet is not None else None
        h = self._up_decode(self._down_encode(h, r_embed, clip, feed), r_embed, clip, feed)
        return self.clf(h).contiguous().to(in_dtype)
