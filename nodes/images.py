"""Image I/O nodes: LoadImage (from the input folder), SaveImage (PNG with workflow), PreviewImage."""
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
from PIL import Image, ImageOps
from PIL.PngImagePlugin import PngInfo

from engine.schema import Input, Node, Output, Result, RunContext
from image_limits import ImageRefused, open_checked
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


def image_to_pils(images: torch.Tensor) -> list[Image.Image]:
    """IMAGE [B,H,W,3] → list of PIL RGB images."""
    arr = (images.detach().float().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
    return [Image.fromarray(a) for a in arr]


class LoadImage(Node):
    """Load an image from the input folder (uploads land there)."""

    TITLE = "Load Image"
    CATEGORY = "stable_cascade/image"
    INPUTS = (Input("image", T.COMBO, choices=input_files, tooltip="a file in the input folder"),)
    OUTPUTS = (Output("image", T.IMAGE, "the image, [1,H,W,3] in 0..1"),)

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
            return (pil_to_image(img),)


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
    CATEGORY = "stable_cascade/image"
    OUTPUT_NODE = True
    INPUTS = (
        Input("images", T.IMAGE, tooltip="the images to save"),
        Input("filename_prefix", T.STRING, default="CascadeStudio",
              tooltip="file name prefix; may contain subfolders and %width%, %height%, %year%… (kept inside output/)"),
    )

    def run(self, ctx: RunContext, images: torch.Tensor, filename_prefix: str = "CascadeStudio") -> Result:
        return save_images(ctx, images, Path(ctx.env.config.output_dir), filename_prefix, "output", 4)


class PreviewImage(Node):
    """Show images without keeping them (written to the temp folder, wiped at start-up)."""

    TITLE = "Preview Image"
    CATEGORY = "stable_cascade/image"
    OUTPUT_NODE = True
    INPUTS = (Input("images", T.IMAGE, tooltip="the images to preview"),)

    def run(self, ctx: RunContext, images: torch.Tensor) -> Result:
        prefix = f"preview_{secrets.token_hex(4)}"
        return save_images(ctx, images, Path(ctx.env.config.temp_dir), prefix, "temp", 1)
