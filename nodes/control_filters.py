"""The three official ControlNet preparations as nodes: Canny Hint, Inpainting Hint, Super-Resolution Hint.

Each gives the hint ApplyControlNet takes, as an IMAGE [B, H, W, C] at the output image's size (the official
filters' semantics, Stability's modules/controlnet.py; differences and ComfyUI's path: docs/controlnets.md).
"""
from __future__ import annotations

from typing import Any

import kornia
import torch
import torch.nn.functional as F

from engine.schema import INT, Input, Node, Output, RunContext
from models.patching import ModelHandle
from nodes import types as T
from nodes.stage_a import image_to_bchw
from runtime.model_use import module_device, module_dtype, using

CANNY_SIZE = 224  # the official CannyFilter(resize=224): edges found on a 224x224 copy, resized back
CANNY_LOW, CANNY_HIGH = 100, 200  # cv2.Canny(img, 100, 200) in the official filter
# Both take the gradient with the plain 3x3 Sobel kernel; OpenCV's pixels are 0..255 and kornia's 0..1, so an
# OpenCV threshold is 255 times kornia's (a step of d grey levels: |Gx| = 4d in OpenCV, 4d/255 in kornia).
OPENCV_GRADIENT_SCALE = 255
SR_FACTOR = 2  # the super-resolution ControlNet was trained for 2x (SREffnetFilter scale_factor 1/2)


def canny_edges(x: torch.Tensor, low: float = CANNY_LOW, high: float = CANNY_HIGH,
                size: int = CANNY_SIZE) -> torch.Tensor:
    """Edges [B, 1, H, W] in [0, 1] of RGB x [B, 3, H, W] in [0, 1], as the official CannyFilter:
    bilinear to size x size (0: the image's own size), 8-bit quantised (truncation, numpy's astype),
    Canny with thresholds low/high in OpenCV's units and no pre-blur, bilinear back to H x W."""
    out_hw = tuple(x.shape[-2:])
    if size:
        x = F.interpolate(x, size=(size, size), mode="bilinear")
    x = (x.clamp(0, 1) * 255).to(torch.uint8).float() / 255
    _, edges = kornia.filters.canny(x, low / OPENCV_GRADIENT_SCALE, high / OPENCV_GRADIENT_SCALE,
                                    kernel_size=(1, 1), sigma=(1.0, 1.0))  # a 1x1 Gaussian: no blur, as cv2.Canny
    if size:
        edges = F.interpolate(edges, size=out_hw, mode="bilinear")
    return edges


def inpaint_hint(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, 4, H, W]: RGB x [B, 3, H, W] with the masked pixels set to 1 (white), then the mask channel (0/1).

    mask [B or 1, h, w] in [0, 1] (1 = repaint) is resized (nearest) to H x W and thresholded at 0.5, as the
    official InpaintFilter's boolean mask (`torch.where(mask, ones, x)`, then `cat([x, mask])`).
    """
    m = mask.float()[:, None]
    if tuple(m.shape[-2:]) != tuple(x.shape[-2:]):
        m = F.interpolate(m, size=tuple(x.shape[-2:]), mode="nearest")
    m = m > 0.5
    if m.shape[0] != x.shape[0]:
        if m.shape[0] != 1 and x.shape[0] != 1:
            raise ValueError(f"mask: batch {m.shape[0]} does not match the image batch {x.shape[0]}")
        b = max(m.shape[0], x.shape[0])
        m, x = m.expand(b, -1, -1, -1), x.expand(b, -1, -1, -1)
    return torch.cat([torch.where(m, torch.ones_like(x), x), m.float()], dim=1)


def to_image(hint: torch.Tensor) -> torch.Tensor:
    return hint.float().movedim(1, -1).contiguous().cpu()


class CannyHint(Node):
    """Canny edges of an image, the official canny ControlNet's hint (computed at 224x224, resized back)."""

    TITLE = "Canny Hint"
    CATEGORY = "stable_cascade/controlnet"
    INPUTS = (
        Input("image", T.IMAGE, tooltip="the image whose edges guide the result, at the output size"),
        Input("low_threshold", INT, default=CANNY_LOW, min=1, max=4080,
              tooltip="OpenCV units (Sobel gradient of 0..255 pixels); official 100"),
        Input("high_threshold", INT, default=CANNY_HIGH, min=1, max=4080,
              tooltip="OpenCV units; official 200"),
        Input("resolution", INT, default=CANNY_SIZE, min=0, max=2048,
              tooltip="edges are found on a square copy of this size, then resized back (official 224; "
                      "0 = the image's own size)"),
    )
    OUTPUTS = (Output("hint", T.IMAGE, "edges (white on black), for Apply ControlNet"),)

    def run(self, ctx: RunContext, image: Any, low_threshold: int, high_threshold: int,
            resolution: int = CANNY_SIZE) -> tuple:
        if low_threshold > high_threshold:
            raise ValueError(f"low_threshold {low_threshold} is above high_threshold {high_threshold}")
        edges = canny_edges(image_to_bchw(image), low_threshold, high_threshold, resolution)
        return (to_image(edges.expand(-1, 3, -1, -1)),)


class InpaintingHint(Node):
    """The inpainting ControlNet's hint: the image with the masked area white, plus the mask (4 channels)."""

    TITLE = "Inpainting Hint"
    CATEGORY = "stable_cascade/controlnet"
    INPUTS = (
        Input("image", T.IMAGE, tooltip="the image to repaint, at the output size"),
        Input("mask", "MASK", tooltip="1 where to repaint (Load Image's mask: 1 - alpha); above 0.5 counts"),
    )
    OUTPUTS = (Output("hint", T.IMAGE, "RGB with the masked area white + the mask channel"),)

    def run(self, ctx: RunContext, image: Any, mask: Any) -> tuple:
        if not torch.is_tensor(mask) or mask.dim() not in (2, 3):
            raise ValueError(f"mask: expected a MASK [B,H,W], got {type(mask).__name__}")
        mask = mask[None] if mask.dim() == 2 else mask
        return (to_image(inpaint_hint(image_to_bchw(image), mask)),)


class SuperResolutionHint(Node):
    """The super-resolution ControlNet's hint: the EfficientNet latent of the image, nearest-upsampled 2x,
    and the 2x output size for StageCSampler (the official 2x path)."""

    TITLE = "Super-Resolution Hint"
    CATEGORY = "stable_cascade/controlnet"
    INPUTS = (
        Input("effnet", T.EFFNET, tooltip="the EfficientNet encoder"),
        Input("image", T.IMAGE, tooltip="the low-resolution image to enlarge 2x"),
    )
    OUTPUTS = (Output("hint", T.IMAGE, "16-channel EfficientNet latent at 2x (not viewable)"),
               Output("width", INT, "2x the image width: StageCSampler's width"),
               Output("height", INT, "2x the image height: StageCSampler's height"))

    def run(self, ctx: RunContext, effnet: ModelHandle, image: Any) -> tuple:
        x = image_to_bchw(image)
        with using(ctx.env, effnet) as net:
            # At the image's own size, as the official notebook encodes it (no resize to Stage C's grid).
            latent = net(x.clamp(0, 1).to(module_device(net), module_dtype(net))).float()
        hint = F.interpolate(latent, scale_factor=SR_FACTOR, mode="nearest")
        return (to_image(hint), int(x.shape[-1]) * SR_FACTOR, int(x.shape[-2]) * SR_FACTOR)

