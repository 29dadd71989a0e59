"""Image I/O nodes: LoadImage (from the input folder), SaveImage (PNG with workflow), PreviewImage.

Their class names, inputs, outputs and categories are ComfyUI's too, so one class serves both families.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from engine.schema import Input, Node, Output, Result, RunContext
from image_limits import ImageRefused, max_pixels, open_checked
from nodes import types as T

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _input_dir(env: Any) -> Path:
    return Path(env.config.input_dir)


def input_files(env: Any) -> list[str]:
    """Image files under the input folder (relative, '/'-separated), sorted."""
    root = _input_dir(env)
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def inside(root: Path, name: str) -> Path | None:
    """`root/name` resolved, or None if it escapes `root` (../, absolute paths, symlinks out)."""
    root = Path(root).resolve()
    path = (root / name).resolve()
    return path if root in path.parents else None


def pil_to_image(img: Image.Image) -> torch.Tensor:
    """PIL → IMAGE [1,H,W,3] float32 in [0,1] (EXIF orientation applied, alpha dropped)."""
    img = ImageOps.exif_transpose(img).convert("RGB")
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)


def _alpha(frame: Image.Image) -> np.ndarray | None:
    """The frame's alpha in [0,1] as float32 [H,W], or None when it has none (a palette
    image's transparent index counts as alpha, as in ComfyUI)."""
    if "A" in frame.getbands():
        return np.asarray(frame.getchannel("A"), dtype=np.float32) / 255.0
    if frame.mode == "P" and "transparency" in frame.info:
        return np.asarray(frame.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
    return None


def load_frames(img: Image.Image, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame of `img` → (IMAGE [F,H,W,3], MASK [F,h,w]) float32, as ComfyUI's LoadImage.

    MASK = 1 − alpha; a file without alpha gives a 64×64 zero mask (ComfyUI's placeholder), or
    zeros of the frame's size for the alpha-less frames of an animation whose other frames have
    alpha. Frames of another size than the first are skipped; an MPO (camera multi-picture JPEG)
    gives its first picture only. 16-bit greyscale ("I") is scaled to 8 bit first. Raises
    ValueError when the frames together exceed the pixel limit (image_limits.max_pixels).
    """
    images: list[np.ndarray] = []
    alphas: list[np.ndarray | None] = []
    budget, used = max_pixels(), 0
    for frame in ImageSequence.Iterator(img):
        frame = ImageOps.exif_transpose(frame)
        if frame.mode == "I":
            frame = frame.point(lambda v: v * (1 / 255))
        rgb = frame.convert("RGB")
        if images and rgb.size != (images[0].shape[1], images[0].shape[0]):
            continue
        used += rgb.width * rgb.height
        if used > budget:
            raise ValueError(f"image '{name}': its frames together exceed the limit of {budget:,} pixels")
        images.append(np.asarray(rgb, dtype=np.float32) / 255.0)
        alphas.append(_alpha(frame))
        if img.format == "MPO":
            break
    height, width = images[0].shape[:2]
    any_alpha = any(a is not None for a in alphas)
    masks = [1.0 - a if a is not None else np.zeros((height, width) if any_alpha else (64, 64), np.float32)
             for a in alphas]
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks))


def image_to_pils(images: torch.Tensor) -> list[Image.Image]:
    """IMAGE [B,H,W,3] or [B,H,W,4] → list of PIL RGB or RGBA images (rounded to 8 bit)."""
    arr = (images.detach().float().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
    return [Image.fromarray(a) for a in arr]


class LoadImage(Node):
    """Load an image from the input folder (uploads land there), with its alpha as a MASK.

    Prompts written by ComfyUI's editor carry an extra `upload` input ("image"); it is not declared,
    so validation and the run ignore it, as ComfyUI does.
    """

    TITLE = "Load Image"
    CATEGORY = "image"
    INPUTS = (Input("image", T.COMBO, choices=input_files, upload=True, tooltip="a file in the input folder"),)
    OUTPUTS = (Output("IMAGE", T.IMAGE, "the image, [F,H,W,3] in 0..1 (F = frames of an animation)"),
               Output("MASK", "MASK", "1 − alpha [F,H,W]; a 64×64 zero mask when the file has no alpha"))

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        name = inputs.get("image")
        if not isinstance(name, str):
            return {}
        path = inside(_input_dir(env), name)
        if path is None:
            return {"image": f"'{name}' is outside the input folder"}
        if not path.is_file():
            # No absolute path here: node errors reach every client, remote ones included.
            return {"image": f"image file '{name}' not found in the input folder"}
        try:  # the header only: refuse a decompression bomb before the job is queued
            open_checked(path).close()
        except ImageRefused as exc:
            return {"image": f"'{name}': {exc}"}
        return {}

    @classmethod
    def fingerprint(cls, env: Any, inputs: dict) -> Any:
        # The file's content, not its name: re-uploading under the same name must re-run.
        path = inside(_input_dir(env), str(inputs.get("image", "")))
        if path is None or not path.is_file():
            return float("nan")
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def run(self, ctx: RunContext, image: str) -> tuple:
        path = inside(_input_dir(ctx.env), image)
        if path is None or not path.is_file():
            raise FileNotFoundError(f"image file '{image}' not found in the input folder")
        try:
            img = open_checked(path)  # checked again: the file may have changed since validation
        except ImageRefused as exc:
            raise ValueError(f"image '{image}': {exc}") from None
        with img:
            return load_frames(img, image)


def expand_prefix(prefix: str, image: Image.Image) -> str:
    """Expand %width%, %height%, %year%, %month%, %day%, %hour%, %minute%, %second% (server-side ones)."""
    now = time.localtime()
    values = {"width": image.width, "height": image.height, "year": now.tm_year,
              "month": f"{now.tm_mon:02d}", "day": f"{now.tm_mday:02d}", "hour": f"{now.tm_hour:02d}",
              "minute": f"{now.tm_min:02d}", "second": f"{now.tm_sec:02d}"}
    return re.sub(r"%(\w+)%", lambda m: str(values.get(m.group(1), m.group(0))), prefix)


def next_counter(folder: Path, stem: str) -> int:
    """1 + the highest existing `<stem>_<NNNNN>_.png` counter in `folder`."""
    pattern = re.compile(re.escape(stem) + r"_(\d{5,})_\.png$")
    found = [int(m.group(1)) for p in folder.glob("*.png") if (m := pattern.match(p.name))]
    return max(found, default=0) + 1


def pnginfo(ctx: RunContext) -> PngInfo:
    """tEXt chunks: `prompt` (API prompt JSON) then one per extra_pnginfo key (`workflow`)."""
    info = PngInfo()
    if ctx.prompt:
        info.add_text("prompt", json.dumps(ctx.prompt))
    for key, value in (ctx.extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def save_images(ctx: RunContext, images: torch.Tensor, root: Path, prefix: str, kind: str,
                compress_level: int) -> Result:
    """Write each image as `<prefix>_<counter:05>_.png` under `root`; subfolders may not escape it."""
    pils = image_to_pils(images)
    root = Path(root).resolve()
    prefix = expand_prefix(prefix or "image", pils[0]) if pils else prefix
    target = inside(root, prefix)
    if target is None or not prefix.strip() or prefix.strip().endswith("/"):
        raise ValueError(f"filename_prefix {prefix!r} must name a file inside the {kind} folder")
    folder, stem = target.parent, target.name
    folder.mkdir(parents=True, exist_ok=True)
    subfolder = folder.relative_to(root).as_posix()
    subfolder = "" if subfolder == "." else subfolder
    counter = next_counter(folder, stem)
    info = pnginfo(ctx)
    results = []
    for i, pil in enumerate(pils):
        name = f"{stem}_{counter + i:05d}_.png"
        pil.save(folder / name, pnginfo=info, compress_level=compress_level)
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
    return Result((), {"images": results})


class SaveImage(Node):
    """Save images as PNG in the output folder, with the workflow embedded (drop it back to reload)."""

    TITLE = "Save Image"
    CATEGORY = "image"
    OUTPUT_NODE = True
    INPUTS = (
        Input("images", T.IMAGE, tooltip="the images to save"),
        Input("filename_prefix", T.STRING, default="ComfyUI",
              tooltip="file name prefix; may contain subfolders and %width%, %height%, %year%… (kept inside output/)"),
    )

    def run(self, ctx: RunContext, images: torch.Tensor, filename_prefix: str = "ComfyUI") -> Result:
        return save_images(ctx, images, Path(ctx.env.config.output_dir), filename_prefix, "output", 4)


class PreviewImage(Node):
    """Show images without keeping them (written to the temp folder, wiped at start-up)."""

    TITLE = "Preview Image"
    CATEGORY = "image"
    OUTPUT_NODE = True
    INPUTS = (Input("images", T.IMAGE, tooltip="the images to preview"),)

    def run(self, ctx: RunContext, images: torch.Tensor) -> Result:
        prefix = f"preview_{secrets.token_hex(4)}"
        return save_images(ctx, images, Path(ctx.env.config.temp_dir), prefix, "temp", 1)
