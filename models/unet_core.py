"""The level structure and down/up passes shared by Stage C and Stage B (spec §1.2 steps 4-5)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .common import AttnBlock, Conv1x1, ResBlock, TimestepBlock, make_block, resize_like


class ControlFeed:
    """Hands out ControlNet residuals in ResBlock order (down pass, then up pass; repeats count).

    Entry n goes to the n-th ResBlock run; None entries and ResBlocks past the list's end get nothing.
    """

    def __init__(self, residuals: Sequence[torch.Tensor | None]):
        self._residuals = list(residuals)
        self._n = 0

    def next(self) -> torch.Tensor | None:
        """The residual for the next ResBlock (None when there is none)."""
        n, self._n = self._n, self._n + 1
        return self._residuals[n] if n < len(self._residuals) else None


class CascadeUNet(nn.Module):
    """Base class: builds down/up levels with the official flat-list layout and runs them."""

    def _build_levels(self, cfg, downscaler: Callable[[int], nn.Module],
                      upscaler: Callable[[int], nn.Module]) -> None:
        """Create down_blocks, down_downscalers, down_repeat_mappers and the up counterparts."""
        n = len(cfg.c_hidden)

        def block(kind: str, i: int, c_skip: int = 0) -> nn.Module:
            return make_block(kind, cfg.c_hidden[i], c_cond=cfg.c_cond, c_r=cfg.c_r, nhead=cfg.nhead[i],
                              t_conds=cfg.t_conds, c_skip=c_skip, kernel_size=cfg.kernel_size,
                              dropout=cfg.dropout[i], self_attn=cfg.self_attn)

        self.down_blocks = nn.ModuleList()
        self.down_downscalers = nn.ModuleList()
        self.down_repeat_mappers = nn.ModuleList()
        for i in range(n):
            self.down_downscalers.append(downscaler(i) if i > 0 else nn.Identity())
            self.down_blocks.append(nn.ModuleList(
                block(kind, i) for _ in range(cfg.blocks[0][i]) for kind in cfg.level_config[i]))
            self.down_repeat_mappers.append(nn.ModuleList(
                Conv1x1(cfg.c_hidden[i], cfg.c_hidden[i]) for _ in range(cfg.block_repeat[0][i] - 1)))

        self.up_blocks = nn.ModuleList()
        self.up_upscalers = nn.ModuleList()
        self.up_repeat_mappers = nn.ModuleList()
        for i in reversed(range(n)):
            self.up_upscalers.append(upscaler(i) if i > 0 else nn.Identity())
            blocks = []
            for j in range(cfg.blocks[1][::-1][i]):
                for k, kind in enumerate(cfg.level_config[i]):
                    c_skip = cfg.c_hidden[i] if (i < n - 1 and j == 0 and k == 0) else 0
                    blocks.append(block(kind, i, c_skip))
            self.up_blocks.append(nn.ModuleList(blocks))
            self.up_repeat_mappers.append(nn.ModuleList(
                Conv1x1(cfg.c_hidden[i], cfg.c_hidden[i]) for _ in range(cfg.block_repeat[1][::-1][i] - 1)))

    @staticmethod
    def _run_block(blk: nn.Module, x: torch.Tensor, r_embed: torch.Tensor, clip: torch.Tensor,
                   skip: torch.Tensor | None = None) -> torch.Tensor:
        if isinstance(blk, ResBlock):
            return blk(x, skip)
        if isinstance(blk, TimestepBlock):
            return blk(x, r_embed)
        if isinstance(blk, AttnBlock):
            return blk(x, clip)
        return blk(x)

    @staticmethod
    def _control(x: torch.Tensor, cnet: "ControlFeed | None") -> torch.Tensor:
        """x plus the next ControlNet residual (resized to x as officially), if any; x itself otherwise."""
        res = cnet.next() if cnet is not None else None
        if res is None:
            return x
        return x + resize_like(res.to(device=x.device, dtype=x.dtype), tuple(x.shape[-2:]))

    def _down_encode(self, x: torch.Tensor, r_embed: torch.Tensor, clip: torch.Tensor,
                     cnet: "ControlFeed | None" = None) -> list[torch.Tensor]:
        """Down pass; returns the level outputs, deepest first."""
        level_outputs: list[torch.Tensor] = []
        for blocks, downscaler, repmap in zip(self.down_blocks, self.down_downscalers, self.down_repeat_mappers):
            x = downscaler(x)
            for rep in range(len(repmap) + 1):
                for blk in blocks:
                    if isinstance(blk, ResBlock):
                        x = self._control(x, cnet)
                    x = self._run_block(blk, x, r_embed, clip)
                if rep < len(repmap):
                    x = repmap[rep](x)
            level_outputs.insert(0, x)
        return level_outputs

    def _up_decode(self, level_outputs: list[torch.Tensor], r_embed: torch.Tensor,
                   clip: torch.Tensor, cnet: "ControlFeed | None" = None) -> torch.Tensor:
        """Up pass; the first ResBlock of every non-deepest level takes that level's skip on every repeat."""
        x = level_outputs[0]
        for i, (blocks, upscaler, repmap) in enumerate(
                zip(self.up_blocks, self.up_upscalers, self.up_repeat_mappers)):
            for rep in range(len(repmap) + 1):
                for k, blk in enumerate(blocks):
                    skip = None
                    if isinstance(blk, ResBlock) and k == 0 and i > 0:
                        skip = level_outputs[i]
                        x = resize_like(x, tuple(skip.shape[-2:]))
                    if isinstance(blk, ResBlock):
                        x = self._control(x, cnet)  # after the skip resize, as the official code
                    x = self._run_block(blk, x, r_embed, clip, skip)
                if rep < len(repmap):
                    x = repmap[rep](x)
            x = upscaler(x)
        return x
