"""Image classes: ImageScale, ImageScaleBy, EmptyImage, ImageInvert, ImageCompositeMasked, JoinImageWithAlpha,
Canny, SaveImageWebsocket (ComfyUI's names, inputs, defaults, ranges and categories).

IMAGE is float32 [B, H, W, C] in [0, 1] with C = 3 (RGB) or 4 (RGBA); every class here takes both.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.schema import BOOLEAN, COMBO, FLOAT, INT, Input, Node, Output, Result, RunContext
from nodes.comfy.masks import MAX_RESOLUTION, as_mask, pixels_problem, refuse_pixels
from nodes.comfy.types import IMAGE, MASK
from nodes.images import image_to_pils

UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
CROP_METHODS = ("disabled", "center")


def as_image(value: Any, what: str = "image") -> torch.Tensor:
    """An IMAGE as float32 [B,H,W,C], C in (3, 4). Raises TypeError naming what arrived."""
    if not torch.is_tensor(value) or value.dim() != 4 or value.shape[-1] not in (3, 4):
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise TypeError(f"{what}: expected an IMAGE (a tensor [B,H,W,3] or [B,H,W,4]), got {shape}")
    return value.float()


def repeat_to_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    """`t` cut or cyclically repeated along dim 0 to `batch` items (ComfyUI's batch matching)."""
    if t.shape[0] >= batch:
        return t[:batch]
    reps = [math.ceil(batch / t.shape[0])] + [1] * (t.dim() - 1)
    return t.repeat(reps)[:batch]


def _lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[B,C,H,W] → [B,C,height,width] through PIL's Lanczos on 8-bit pixels (ComfyUI quantises
    by truncation, 255·x cast to uint8, before resizing; so do we, to give the same pixels)."""
    out = []
    for item in samples.movedim(1, -1).cpu().numpy():
        pil = Image.fromarray(np.clip(255.0 * item, 0, 255).astype(np.uint8))
        pil = pil.resize((width, height), resample=Image.Resampling.LANCZOS)
        out.append(torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0))
    return torch.stack(out).movedim(-1, 1)


def resize(samples: torch.Tensor, width: int, height: int, method: str, crop: str) -> torch.Tensor:
    """[B,C,H,W] → [B,C,height,width] (ComfyUI's common_upscale): with crop "center" the centre part
    of the source with the target's aspect ratio is kept first; lanczos goes through PIL, the other
    methods are torch.nn.functional.interpolate modes of the same name."""
    if method not in UPSCALE_METHODS:
        raise ValueError(f"upscale_method must be one of {', '.join(UPSCALE_METHODS)}, got {method!r}")
    if crop not in CROP_METHODS:
        raise ValueError(f"crop must be one of {', '.join(CROP_METHODS)}, got {crop!r}")
    if crop == "center":
        old_w, old_h = samples.shape[-1], samples.shape[-2]
        old_aspect, new_aspect = old_w / old_h, width / height
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2) if old_aspect > new_aspect else 0
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2) if old_aspect < new_aspect else 0
        samples = samples[..., y:old_h - y, x:old_w - x]
    if method == "lanczos":
        return _lanczos(samples, width, height)
    return F.interpolate(samples, size=(height, width), mode=method)


class ImageScale(Node):
    """Resize to width × height; a 0 side follows the aspect ratio (both 0: unchanged)."""

    TITLE = "Upscale Image"
    CATEGORY = "image/upscaling"
    INPUTS = (
        Input("image", IMAGE),
        Input("upscale_method", COMBO, choices=UPSCALE_METHODS),
        Input("width", INT, default=512, min=0, max=MAX_RESOLUTION, step=1),
        Input("height", INT, default=512, min=0, max=MAX_RESOLUTION, step=1),
        Input("crop", COMBO, choices=CROP_METHODS),
    )
    OUTPUTS = (Output("IMAGE", IMAGE),)

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        # Both sides given: one image of that size must fit already (the batch is known only at run time).
        problem = pixels_problem(1, inputs.get("width"), inputs.get("height"))
        return {"width": problem} if problem else {}

    def run(self, ctx: RunContext, image: torch.Tensor, upscale_method: str, width: int, height: int,
            crop: str) -> tuple:
        image = as_image(image)
        if width == 0 and height == 0:
            return (image,)
        h, w = image.shape[1:3]
        if width == 0:
            width = max(1, round(w * height / h))
        elif height == 0:
            height = max(1, round(h * width / w))
        refuse_pixels(image.shape[0], width, height)
        return (resize(image.movedim(-1, 1), width, height, upscale_method, crop).movedim(1, -1),)


class ImageScaleBy(Node):
    """Resize by a factor (each side rounded)."""

    TITLE = "Upscale Image By"
    CATEGORY = "image/upscaling"
    INPUTS = (
        Input("image", IMAGE),
        Input("upscale_method", COMBO, choices=UPSCALE_METHODS),
        Input("scale_by", FLOAT, default=1.0, min=0.01, max=8.0, step=0.01),
    )
    OUTPUTS = (Output("IMAGE", IMAGE),)

    def run(self, ctx: RunContext, image: torch.Tensor, upscale_method: str, scale_by: float = 1.0) -> tuple:
        image = as_image(image)
        width, height = round(image.shape[2] * scale_by), round(image.shape[1] * scale_by)
        if width < 1 or height < 1:
            raise ValueError(f"scale_by {scale_by} makes the {image.shape[2]}×{image.shape[1]} image empty")
        refuse_pixels(image.shape[0], width, height)
        return (resize(image.movedim(-1, 1), width, height, upscale_method, "disabled").movedim(1, -1),)


class EmptyImage(Node):
    """batch_size images of one colour (color = 0xRRGGBB)."""

    TITLE = "EmptyImage"
    CATEGORY = "image"
    INPUTS = (
        Input("width", INT, default=512, min=1, max=MAX_RESOLUTION, step=1),
        Input("height", INT, default=512, min=1, max=MAX_RESOLUTION, step=1),
        Input("batch_size", INT, default=1, min=1, max=4096),
        Input("color", INT, default=0, min=0, max=0xFFFFFF, step=1),
    )
    OUTPUTS = (Output("IMAGE", IMAGE),)

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        problem = pixels_problem(inputs.get("batch_size", 1), inputs.get("width"), inputs.get("height"))
        return {"batch_size": problem} if problem else {}

    def run(self, ctx: RunContext, width: int = 512, height: int = 512, batch_size: int = 1,
            color: int = 0) -> tuple:
        refuse_pixels(batch_size, width, height)
        rgb = torch.tensor([(color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF], dtype=torch.float32) / 0xFF
        return (rgb.expand(int(batch_size), int(height), int(width), 3).contiguous(),)


class ImageInvert(Node):
    """1 − image (every channel, alpha included, as ComfyUI)."""

    TITLE = "Invert Image"
    CATEGORY = "image"
    INPUTS = (Input("image", IMAGE),)
    OUTPUTS = (Output("IMAGE", IMAGE),)

    def run(self, ctx: RunContext, image: torch.Tensor) -> tuple:
        return (1.0 - as_image(image),)


def composite(dest: torch.Tensor, src: torch.Tensor, x: int, y: int, mask: torch.Tensor | None,
              resize_source: bool) -> torch.Tensor:
    """Paste src [b,C,h,w] into a copy of dest [B,C,H,W] with its top-left corner at (x, y):
    out = mask·src + (1 − mask)·dest over the overlap, mask [m,h',w'] resized (bilinear) to the
    source; no mask = 1. The source (and mask) batch is cut or repeated to the destination's."""
    out = dest.clone()
    if resize_source:
        src = F.interpolate(src, size=out.shape[-2:], mode="bilinear")
    src = repeat_to_batch(src, out.shape[0])
    if mask is None:
        mask = torch.ones_like(src)
    else:
        mask = F.interpolate(mask.reshape(-1, 1, *mask.shape[-2:]), size=src.shape[-2:], mode="bilinear")
        mask = repeat_to_batch(mask, src.shape[0])
    x, y = min(int(x), out.shape[-1]), min(int(y), out.shape[-2])
    h, w = min(src.shape[-2], out.shape[-2] - y), min(src.shape[-1], out.shape[-1] - x)
    m = mask[..., :h, :w]
    out[..., y:y + h, x:x + w] = m * src[..., :h, :w] + (1 - m) * out[..., y:y + h, x:x + w]
    return out


class ImageCompositeMasked(Node):
    """Paste source onto destination at (x, y), blended by the optional mask."""

    TITLE = "ImageCompositeMasked"
    CATEGORY = "image"
    INPUTS = (
        Input("destination", IMAGE),
        Input("source", IMAGE),
        Input("x", INT, default=0, min=0, max=MAX_RESOLUTION, step=1),
        Input("y", INT, default=0, min=0, max=MAX_RESOLUTION, step=1),
        Input("resize_source", BOOLEAN, default=False),
        Input("mask", MASK, optional=True),
    )
    OUTPUTS = (Output("IMAGE", IMAGE),)

    def run(self, ctx: RunContext, destination: torch.Tensor, source: torch.Tensor, x: int = 0, y: int = 0,
            resize_source: bool = False, mask: torch.Tensor | None = None) -> tuple:
        dest, src = as_image(destination, "destination"), as_image(source, "source")
        if src.shape[-1] > dest.shape[-1]:  # RGBA onto RGB: the source's alpha is dropped
            src = src[..., :dest.shape[-1]]
        elif src.shape[-1] < dest.shape[-1]:  # RGB onto RGBA: the source is opaque
            src = torch.cat([src, torch.ones_like(src[..., :1])], dim=-1)
        m = None if mask is None else as_mask(mask)
        out = composite(dest.movedim(-1, 1), src.movedim(-1, 1), x, y, m, bool(resize_source))
        return (out.movedim(1, -1),)


class JoinImageWithAlpha(Node):
    """RGBA image whose alpha is 1 − mask (the mask resized bilinearly to the image)."""

    TITLE = "Join Image with Alpha"
    CATEGORY = "mask/compositing"
    INPUTS = (Input("image", IMAGE), Input("alpha", MASK))
    OUTPUTS = (Output("IMAGE", IMAGE),)

    def run(self, ctx: RunContext, image: torch.Tensor, alpha: torch.Tensor) -> tuple:
        image, alpha = as_image(image), as_mask(alpha, "alpha")
        batch = max(image.shape[0], alpha.shape[0])
        image, alpha = repeat_to_batch(image, batch), repeat_to_batch(alpha, batch)
        alpha = F.interpolate(alpha.unsqueeze(1), size=image.shape[1:3], mode="bilinear").squeeze(1)
        return (torch.cat([image[..., :3], (1.0 - alpha).unsqueeze(-1)], dim=-1),)


class Canny(Node):
    """Canny edges (kornia.filters.canny, as ComfyUI: 5×5 Gaussian σ = 1, hysteresis), white on black."""

    TITLE = "Canny"
    CATEGORY = "image/preprocessors"
    INPUTS = (
        Input("image", IMAGE),
        Input("low_threshold", FLOAT, default=0.4, min=0.01, max=0.99, step=0.01),
        Input("high_threshold", FLOAT, default=0.8, min=0.01, max=0.99, step=0.01),
    )
    OUTPUTS = (Output("IMAGE", IMAGE),)

    def run(self, ctx: RunContext, image: torch.Tensor, low_threshold: float = 0.4,
            high_threshold: float = 0.8) -> tuple:
        from kornia.filters import canny  # imported here: kornia costs start-up time only Canny needs

        if low_threshold > high_threshold:
            raise ValueError(f"low_threshold ({low_threshold}) must not exceed high_threshold ({high_threshold})")
        rgb = as_image(image)[..., :3]  # kornia greys 3 channels; an alpha channel carries no edges here
        _admit_canny(ctx.env, rgb.shape[1], rgb.shape[2])
        # One image at a time: kornia's intermediates (~250 bytes a pixel) then scale with one image, not
        # the batch; each item's edges do not depend on the others.
        out = []
        for item in rgb.movedim(-1, 1).split(1):
            ctx.check_interrupted()
            out.append(canny(item, low_threshold, high_threshold)[1])
        return (torch.cat(out).repeat(1, 3, 1, 1).movedim(1, -1),)


CANNY_BYTES_PER_PIXEL = 320  # kornia.filters.canny's peak, measured 210-270 B/px on CPU, with a margin


def _admit_canny(env: Any, height: int, width: int) -> None:
    """Refuse (MemoryRefused, before any work) an image whose Canny intermediates exceed the memory the
    admission leaves for activations (runtime.admission.limit_bytes, the limit every other node uses)."""
    from runtime.admission import GIB, MemoryRefused, limit_bytes

    models = getattr(env, "models", None)
    if models is None:
        return
    needed = CANNY_BYTES_PER_PIXEL * int(height) * int(width)
    limit = limit_bytes("cpu", models.budget_bytes, models.resident_bytes())
    if needed > limit:
        side = int(math.sqrt(limit / CANNY_BYTES_PER_PIXEL))
        raise MemoryRefused(f"Canny of a {width}x{height} image needs ~{math.ceil(needed / GIB)} GiB, limit "
                            f"{limit / GIB:.1f} GiB (memory less what the models hold); the largest square "
                            f"image that fits is about {side}x{side}")


class SaveImageWebsocket(Node):
    """Send each image to the prompt's websocket client as a binary PNG frame (nothing is written to disk).

    The frame is ComfyUI's: 4-byte big-endian event type 1 (preview image), 4-byte format 2 (PNG), then
    the PNG; clients that sent `supports_preview_metadata` get the type-4 form. Unlike sampler previews,
    these frames reach every client of the prompt, opted in or not: they are the output.
    """

    TITLE = "SaveImageWebsocket"
    CATEGORY = "api/image"
    OUTPUT_NODE = True
    INPUTS = (Input("images", IMAGE),)

    @classmethod
    def fingerprint(cls, env: Any, inputs: dict) -> Any:
        return float("nan")  # a cached run would send nothing: always run, as ComfyUI

    def run(self, ctx: RunContext, images: torch.Tensor) -> Result:
        pils = image_to_pils(as_image(images, "images"))
        for step, pil in enumerate(pils):
            # ("PNG", image, None): ComfyUI's form of a full-size image sent as a preview frame
            ctx.progress(step, len(pils), ("PNG", pil, None))
        return Result((), None)


NODES: dict[str, type[Node]] = {
    "ImageScale": ImageScale, "ImageScaleBy": ImageScaleBy, "EmptyImage": EmptyImage,
    "ImageInvert": ImageInvert, "ImageCompositeMasked": ImageCompositeMasked,
    "JoinImageWithAlpha": JoinImageWithAlpha, "Canny": Canny, "SaveImageWebsocket": SaveImageWebsocket,
}
