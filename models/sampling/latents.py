"""Latent sizes for any image width/height (spec §3.1 "Latent sizes").

Convention: the official ``calculate_latent_sizes`` — Stage C ``ceil(H / 42.67)``, Stage B
``ceil(H / 4)``. Why: Stage A decodes a B latent to exactly 4x its size, so ``ceil(H/4)`` gives the
requested image size for every multiple of 4 (and the next multiple of 4 otherwise), whereas
diffusers' ``int(h_c * 10.67)`` snaps B to the C grid (1000 px -> 1024 px) and ComfyUI's ``H // 42``
agrees for the usual sizes but not all (1000 px: 23 vs our 24).
Both networks are fully convolutional and upsample their skips to the skip's size, so any size runs
once the Stage B grid is a multiple of its patch size (``stage_b_grid`` rounds it up; the nodes crop
the decoded image back to the requested size).
"""
from __future__ import annotations

import math

STAGE_C_CHANNELS = 16
STAGE_B_CHANNELS = 4
STAGE_C_COMPRESSION = 42.67
STAGE_B_COMPRESSION = 4


def _check(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")


def stage_c_hw(width: int, height: int) -> tuple[int, int]:
    """(h, w) of the Stage C latent for an image of width x height."""
    _check(width, height)
    return math.ceil(height / STAGE_C_COMPRESSION), math.ceil(width / STAGE_C_COMPRESSION)


def stage_b_hw(width: int, height: int) -> tuple[int, int]:
    """(h, w) of the Stage B latent (= Stage A latent grid) for an image of width x height."""
    _check(width, height)
    return math.ceil(height / STAGE_B_COMPRESSION), math.ceil(width / STAGE_B_COMPRESSION)


def round_up(n: int, multiple: int) -> int:
    """Smallest multiple of `multiple` that is >= n."""
    return -(-int(n) // multiple) * multiple


def stage_b_grid(width: int, height: int, *, multiple: int = 2, minimum: int = 16) -> tuple[int, int]:
    """(h, w) of the Stage B latent actually sampled for an image of width x height.

    ``stage_b_hw`` rounded up to a multiple of Stage B's patch size (its PixelUnshuffle needs it; the
    official models use 2) and to at least ``minimum`` (patch x 2^(levels-1) = 16: below it a
    stride-2 level would get an empty map). Standard sizes (multiples of 8 from 64 px) are unchanged;
    the extra row/column is cropped off after Stage A, so the image keeps the requested size.
    """
    h, w = stage_b_hw(width, height)
    return (round_up(max(h, minimum), multiple), round_up(max(w, minimum), multiple))


def stage_c_shape(width: int, height: int, batch: int = 1) -> tuple[int, int, int, int]:
    """[B, 16, ceil(H/42.67), ceil(W/42.67)]."""
    return (batch, STAGE_C_CHANNELS, *stage_c_hw(width, height))


def stage_b_shape(width: int, height: int, batch: int = 1) -> tuple[int, int, int, int]:
    """[B, 4, ceil(H/4), ceil(W/4)]."""
    return (batch, STAGE_B_CHANNELS, *stage_b_hw(width, height))


def image_size_from_stage_b(h_b: int, w_b: int) -> tuple[int, int]:
    """(width, height) of the image Stage A decodes from a B latent of h_b x w_b."""
    return w_b * STAGE_B_COMPRESSION, h_b * STAGE_B_COMPRESSION
