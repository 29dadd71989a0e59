"""Which files count as images, and how big one may be, decided from the header before decoding.

Shared by the upload route, ``/view`` previews and the LoadImage node, so a small file that declares
a huge canvas (a decompression bomb: 164 KB of PNG can declare 169 megapixels and cost gigabytes
once decoded) is refused everywhere with the same limit and the same message.
"""
from __future__ import annotations

import io
import os
import warnings
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

# 8192 × 8192: every size the nodes can produce fits; a photo from a 60 MP camera fits too.
DEFAULT_MAX_PIXELS = 8192 * 8192
MAX_PIXELS_ENV = "CASCADE_MAX_IMAGE_PIXELS"

# Pillow format → (the extension a stored file gets, extensions that already name that format).
# Only these formats are opened at all: Pillow's other plugins (EPS runs Ghostscript, PSD, ICNS…)
# are never offered an uploaded file.
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "PNG": (".png", (".png",)),
    "JPEG": (".jpg", (".jpg", ".jpeg")),
    "MPO": (".jpg", (".jpg", ".jpeg")),  # multi-picture JPEG, as many cameras write
    "WEBP": (".webp", (".webp",)),
    "GIF": (".gif", (".gif",)),
    "BMP": (".bmp", (".bmp",)),
    "TIFF": (".tif", (".tif", ".tiff")),
}
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class ImageRefused(ValueError):
    """The file is not an accepted image, or is too large; ``str()`` says which and why."""


class NotAnImage(ImageRefused):
    pass


class TooManyPixels(ImageRefused):
    """``pixels`` (and ``size`` = (width, height) when known) exceed ``limit``."""

    def __init__(self, pixels: int, limit: int, size: tuple[int, int] | None = None):
        self.pixels, self.limit, self.size = pixels, limit, size
        what = f"{size[0]}×{size[1]} ({pixels:,} pixels)" if size else f"{pixels:,} pixels"
        super().__init__(f"image of {what} exceeds the limit of {limit:,} pixels "
                         f"(set {MAX_PIXELS_ENV} to change it)")


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow's name: "PNG", "JPEG", …
    width: int
    height: int

    @property
    def suffix(self) -> str:
        """The extension a file of this format is stored under (``.png``, ``.jpg``, …)."""
        return FORMATS[self.format][0]

    def fits_suffix(self, suffix: str) -> bool:
        return suffix.lower() in FORMATS[self.format][1]


def max_pixels() -> int:
    """The pixel limit: ``$CASCADE_MAX_IMAGE_PIXELS`` if set to a positive integer, else 8192²."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_PIXELS
    except ValueError:
        value = DEFAULT_MAX_PIXELS
    return value if value > 0 else DEFAULT_MAX_PIXELS


def open_checked(source: Path | str | bytes | BinaryIO) -> Image.Image:
    """The image opened (header only, nothing decoded yet) after its pixel count was checked.

    Raises NotAnImage for anything Pillow cannot identify as one of FORMATS, TooManyPixels above
    ``max_pixels()``. The caller closes the image (``with open_checked(p) as img: img.load()``).
    """
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    limit = max_pixels()
    Image.init()  # registers the WebP/TIFF/MPO plugins; `formats=` does not load them itself
    # One limit for both checks: Pillow's own (it refuses beyond twice MAX_IMAGE_PIXELS while
    # opening) would otherwise refuse sizes a raised CASCADE_MAX_IMAGE_PIXELS allows.
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below
            # MPO has no opener of its own: the JPEG opener returns it.
            image = Image.open(fp, formats=[f for f in FORMATS if f in Image.OPEN])
    except Image.DecompressionBombError as exc:
        # Pillow refuses beyond twice its own limit before we see the size; its message has the count.
        found = _BOMB_PIXELS.search(str(exc))
        raise TooManyPixels(int(found.group(1)) if found else limit + 1, limit) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise NotAnImage("not an image (PNG, JPEG, WebP, GIF, BMP or TIFF)") from None
    width, height = image.size
    if width * height > limit:
        image.close()
        raise TooManyPixels(width * height, limit, (width, height))
    return image


def check_image_bytes(data: bytes) -> ImageInfo:
    """Decode `data` fully (an upload) and return its format and size; raises ImageRefused.

    ``verify()`` checks the container (PNG chunk CRCs), ``load()`` decodes the pixels, so truncated
    or corrupt files and polyglots that only start like an image are refused too.
    """
    with open_checked(data) as image:
        info = ImageInfo(image.format or "", *image.size)
        try:
            image.verify()
        except Exception:  # Pillow's plugins raise many types for corrupt data
            raise NotAnImage(f"corrupt {info.format} image") from None
    with open_checked(data) as image:
        try:
            image.load()
        except Exception:
            raise NotAnImage(f"corrupt or truncated {info.format} image") from None
    return info
