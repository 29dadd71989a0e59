"""Mask classes: InvertMask, ThresholdMask, GrowMask, SolidMask, LoadImageMask (ComfyUI's names and inputs).

MASK is float32 [B, H, W] in [0, 1]; a [H, W] mask (older ComfyUI nodes make them) is read as one of B = 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from engine.schema import BOOLEAN, COMBO, FLOAT, INT, Input, Node, Output, RunContext
from image_limits import ImageRefused, max_pixels, open_checked
from nodes.comfy.types import MASK
from nodes.images import LoadImage, input_files, inside

MAX_RESOLUTION = 16384  # ComfyUI's bound on every width/height/offset input


def pixels_problem(batch: Any, width: Any, height: Any) -> str | None:
    """Why an IMAGE/MASK of batch x height x width may not be made, or None. One limit for every image
    the family makes, the one LoadImage's frames share (image_limits.max_pixels: 8192² unless
    $CASCADE_MAX_IMAGE_PIXELS says otherwise), checked before anything is allocated: ComfyUI's inputs go
    up to 16384² x 4096, which is terabytes. Non-integers give None (the input checks name those)."""
    try:
        batch, width, height = int(batch), int(width), int(height)
    except (TypeError, ValueError):
        return None
    limit = max_pixels()
    if batch * width * height <= limit:
        return None
    return (f"{batch} x {width}x{height} is {batch * width * height:,} pixels, over the limit of {limit:,} "
            f"pixels for the images and masks of one node (about {limit * 16 / (1 << 30):.0f} GiB as RGBA "
            "float32); lower the size or batch_size, or raise CASCADE_MAX_IMAGE_PIXELS")


def refuse_pixels(batch: Any, width: Any, height: Any) -> None:
    """Raise ValueError (the node's error) when `pixels_problem` names one."""
    problem = pixels_problem(batch, width, height)
    if problem:
        raise ValueError(problem)


def as_mask(value: Any, what: str = "mask") -> torch.Tensor:
    """A MASK as float32 [B,H,W]; [H,W] gains the batch axis. Raises TypeError naming what arrived."""
    if not torch.is_tensor(value) or value.dim() not in (2, 3):
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise TypeError(f"{what}: expected a MASK (a tensor [B,H,W] or [H,W]), got {shape}")
    value = value.float()
    return value.unsqueeze(0) if value.dim() == 2 else value


class InvertMask(Node):
    """1 − mask."""

    TITLE = "InvertMask"
    CATEGORY = "mask"
    INPUTS = (Input("mask", MASK),)
    OUTPUTS = (Output("MASK", MASK),)

    def run(self, ctx: RunContext, mask: torch.Tensor) -> tuple:
        return (1.0 - as_mask(mask),)


class ThresholdMask(Node):
    """1 where mask > value, else 0."""

    TITLE = "ThresholdMask"
    CATEGORY = "mask"
    INPUTS = (Input("mask", MASK), Input("value", FLOAT, default=0.5, min=0.0, max=1.0, step=0.01))
    OUTPUTS = (Output("MASK", MASK),)

    def run(self, ctx: RunContext, mask: torch.Tensor, value: float = 0.5) -> tuple:
        return ((as_mask(mask) > value).float(),)


def _morph(mask: torch.Tensor, tapered: bool, grow: bool) -> torch.Tensor:
    """One round of grey dilation (grow) or erosion over a 3×3 cross (tapered) or box, [B,H,W].

    Edges are padded by replication, which for a 3×3 window equals scipy.ndimage's default
    'reflect' border (ComfyUI calls scipy.ndimage.grey_dilation/grey_erosion), without scipy.
    """
    padded = F.pad(mask.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    h, w = mask.shape[-2:]
    offsets = [(dy, dx) for dy in range(3) for dx in range(3)
               if not tapered or dy == 1 or dx == 1]
    shifted = torch.stack([padded[:, dy:dy + h, dx:dx + w] for dy, dx in offsets])
    return shifted.amax(0) if grow else shifted.amin(0)


class GrowMask(Node):
    """Grow (expand > 0) or shrink (expand < 0) the mask by |expand| pixels."""

    TITLE = "GrowMask"
    CATEGORY = "mask"
    INPUTS = (
        Input("mask", MASK),
        Input("expand", INT, default=0, min=-MAX_RESOLUTION, max=MAX_RESOLUTION, step=1),
        Input("tapered_corners", BOOLEAN, default=True),
    )
    OUTPUTS = (Output("MASK", MASK),)

    def run(self, ctx: RunContext, mask: torch.Tensor, expand: int = 0, tapered_corners: bool = True) -> tuple:
        out = as_mask(mask)
        # Each round only moves values by one pixel: past H + W rounds nothing changes any more.
        rounds = min(abs(int(expand)), out.shape[-1] + out.shape[-2])
        for _ in range(rounds):
            ctx.check_interrupted()
            out = _morph(out, bool(tapered_corners), expand > 0)
        return (out,)


class SolidMask(Node):
    """A constant mask [1, height, width] filled with value."""

    TITLE = "SolidMask"
    CATEGORY = "mask"
    INPUTS = (
        Input("value", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01),
        Input("width", INT, default=512, min=1, max=MAX_RESOLUTION, step=1),
        Input("height", INT, default=512, min=1, max=MAX_RESOLUTION, step=1),
    )
    OUTPUTS = (Output("MASK", MASK),)

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        problem = pixels_problem(1, inputs.get("width"), inputs.get("height"))
        return {"width": problem} if problem else {}

    def run(self, ctx: RunContext, value: float = 1.0, width: int = 512, height: int = 512) -> tuple:
        refuse_pixels(1, width, height)
        return (torch.full((1, int(height), int(width)), float(value), dtype=torch.float32),)


class LoadImageMask(Node):
    """One channel of an input-folder image as a MASK [1,H,W]; the alpha channel is inverted (1 − alpha)."""

    TITLE = "Load Image (as Mask)"
    CATEGORY = "mask"
    CHANNELS = ("alpha", "red", "green", "blue")
    INPUTS = (Input("image", COMBO, choices=input_files, upload=True), Input("channel", COMBO, choices=CHANNELS))
    OUTPUTS = (Output("MASK", MASK),)

    check = LoadImage.check  # same file rules (inside the input folder, exists, not a bomb)
    fingerprint = LoadImage.fingerprint

    def run(self, ctx: RunContext, image: str, channel: str) -> tuple:
        if channel not in self.CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(self.CHANNELS)}, got {channel!r}")
        path = inside(ctx.env.config.input_dir, image)
        if path is None or not path.is_file():
            raise FileNotFoundError(f"image file '{image}' not found in the input folder")
        try:
            img = open_checked(path)
        except ImageRefused as exc:
            raise ValueError(f"image '{image}': {exc}") from None
        with img:
            frame: Image.Image = ImageOps.exif_transpose(img)
            if frame.getbands() != ("R", "G", "B", "A"):
                if frame.mode == "I":  # 16-bit greyscale: to 8 bit first, as ComfyUI
                    frame = frame.point(lambda v: v * (1 / 255))
                frame = frame.convert("RGBA")  # no alpha → opaque → alpha mask of zeros
            values = np.asarray(frame.getchannel(channel[0].upper()), dtype=np.float32) / 255.0
        mask = torch.from_numpy(values).unsqueeze(0)
        return (1.0 - mask if channel == "alpha" else mask,)


NODES: dict[str, type[Node]] = {
    "InvertMask": InvertMask, "ThresholdMask": ThresholdMask, "GrowMask": GrowMask,
    "SolidMask": SolidMask, "LoadImageMask": LoadImageMask,
}
