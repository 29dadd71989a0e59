"""Stage A decode in tiles, so that peak memory stays flat with the image size (issue 16 §3).

Each tile is a core of `tile` latent pixels per side, decoded with a halo of `halo` latent pixels of real
neighbours around it (clipped at the image edge); only the core's pixels are kept. Every decoder layer is
local (per-pixel LayerNorm and MLP, 3×3 depthwise convs, one 4×4 stride-2 transposed conv), so a pixel
depends only on latents within `receptive_radius(config)`; with a halo at least that wide every kept
pixel sees exactly the inputs the untiled decode gives it, at tile seams too. The result then equals the
untiled decode up to float rounding (different tensor widths can change a kernel's blocking), measured at
most 2 ulp of the output's largest value on CPU fp32; tests/test_stage_a_tiles.py holds it to 8 ulp.
A smaller halo (a caller's choice) shows seams.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .stage_a import StageA, StageAConfig

AUTO_PIXELS = 2048 * 2048  # "auto" tiles images larger than 2048² (the untiled fp32 peak there is ~6 GiB)
DEFAULT_TILE = 256  # latent pixels per core side: a 1024² image piece, the peak of an untiled ~1150² decode
TILE_MODES = ("auto", "always", "never")


def receptive_radius(config: StageAConfig) -> int:
    """Latent pixels each side that one output pixel of decode depends on (an upper bound).

    The first level's blocks each add one latent pixel (3×3 depthwise conv); each later level adds its
    transposed conv (one pixel of the level below) and one block (one pixel of its own, finer, grid).
    """
    radius = float(config.bottleneck_blocks)
    for level in range(1, config.levels):
        radius += 1 / 2 ** (level - 1) + 1 / 2 ** level
    return math.ceil(radius)


def piece_side(config: StageAConfig, tile: int | None = None) -> int:
    """Latent pixels per side of the largest piece a tiled decode runs at once: the core and its halos."""
    return (DEFAULT_TILE if tile is None else tile) + 2 * receptive_radius(config)


def should_tile(mode: str, latent_hw: tuple[int, int]) -> bool:
    """Whether `mode` tiles a latent of this [H, W] (image = 4× the latent per side)."""
    if mode not in TILE_MODES:
        raise ValueError(f"tiled must be one of {', '.join(TILE_MODES)}, not {mode!r}")
    h, w = latent_hw
    return mode == "always" or (mode == "auto" and 16 * h * w > AUTO_PIXELS)


def decode_tiled(net: StageA, latent: torch.Tensor, tile: int | None = None, halo: int | None = None,
                 fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """StageA.decode in tiles: latent [B,4,H,W] (scaled, as Stage B gives it) -> RGB [B,3,4H,4W] in [0,1].

    tile: core side in latent pixels (≥ 1; default DEFAULT_TILE); halo: latent pixels of context each
    side, default the decoder's receptive radius (exact; see the module doc); fn: the per-tile decode,
    default net.decode (tests pass the unclamped one). Output in the latent's dtype and device.
    Raises ValueError for a tile < 1 or a negative halo.
    """
    tile = DEFAULT_TILE if tile is None else tile
    if tile < 1 or (halo is not None and halo < 0):
        raise ValueError(f"tile must be ≥ 1 and halo ≥ 0 (got tile={tile}, halo={halo})")
    halo = receptive_radius(net.config) if halo is None else halo
    fn = net.decode if fn is None else fn
    b, _, h, w = latent.shape
    out = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - halo, 0), max(x0 - halo, 0)
            piece = fn(latent[:, :, ya:min(y1 + halo, h), xa:min(x1 + halo, w)])
            if out is None:
                out = piece.new_empty(b, piece.shape[1], 4 * h, 4 * w)
            out[:, :, 4 * y0:4 * y1, 4 * x0:4 * x1] = \
                piece[:, :, 4 * (y0 - ya):4 * (y1 - ya), 4 * (x0 - xa):4 * (x1 - xa)]
    return out


def decode(net: StageA, latent: torch.Tensor, mode: str = "auto", tile: int | None = None) -> torch.Tensor:
    """StageA.decode, tiled when `mode` says so (should_tile); same shapes and dtype either way."""
    if should_tile(mode, tuple(latent.shape[-2:])):
        return decode_tiled(net, latent, tile)
    return net.decode(latent)
