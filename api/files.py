"""``GET /view`` and ``POST /upload/image``; paths never leave their base folders.

Nothing stored or served here may run script on our origin: uploads are accepted only when Pillow
decodes them as an image (stored byte for byte, under the extension of the decoded format), and
``/view`` renders only an allow-list of raster types; everything else is a download.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

from aiohttp import web
from aiohttp.helpers import content_disposition_header
from aiohttp.http_exceptions import HttpProcessingError

from api.common import BadRequest, json_error, json_response, services, truthy
from config import Config
from image_limits import (ImageRefused, NotAnImage, TooManyPixels, check_image_bytes,
                          open_checked)

FOLDER_TYPES = ("output", "input", "temp")
# Rendered by the browser, never script: the only types /view serves inline (with nosniff). SVG,
# HTML, XML and every unknown type are sent as attachments of type application/octet-stream.
INLINE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp"}
MAX_NAME_BYTES = 255        # NAME_MAX of every common file system
MAX_SUBFOLDER_BYTES = 1024  # well under PATH_MAX once joined to a base folder


def base_dir(config: Config, kind: str) -> Path:
    return {"output": config.output_dir, "input": config.input_dir, "temp": config.temp_dir}[kind]


def clip(value: str, limit: int = 80) -> str:
    """`value` for an error message: repr'd, and shortened so a 10k-character input is not echoed."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def check_text(value: str, what: str, max_bytes: int) -> str:
    """Valid Unicode (no lone surrogates), no control characters, at most `max_bytes` UTF-8 bytes."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadRequest(f"{what} is not valid Unicode") from None
    if size > max_bytes:
        raise BadRequest(f"{what} is too long ({size} bytes, at most {max_bytes})")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadRequest(f"{what} contains control characters")
    return value


def check_name(name: str) -> str:
    """A bare file name: no separators, no ``..``, not empty, not absolute, not over-long."""
    check_text(name, "file name", MAX_NAME_BYTES)
    if not name or name in (".", "..") or "/" in name or "\\" in name or ".." in name:
        raise BadRequest(f"invalid file name {clip(name)}")
    return name


def check_subfolder(subfolder: str) -> str:
    check_text(subfolder, "subfolder", MAX_SUBFOLDER_BYTES)
    if subfolder.startswith("/") or subfolder.startswith("\\"):
        raise web.HTTPForbidden(reason="absolute subfolder")
    return subfolder


def safe_join(base: Path, subfolder: str, name: str) -> Path:
    """`base/subfolder/name` resolved (symlinks included); web.HTTPForbidden if it escapes.

    A path the OS cannot resolve (a component over NAME_MAX, a symlink loop) is web.HTTPNotFound;
    NUL bytes and text that is not Unicode (lone surrogates, undecodable multipart names) are
    BadRequest, as are parts over MAX_NAME_BYTES or a relative path over MAX_SUBFOLDER_BYTES.
    """
    try:
        rel = f"{subfolder}/{name}".encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("file name or subfolder is not valid Unicode") from None
    if b"\x00" in rel or len(rel) > MAX_SUBFOLDER_BYTES + MAX_NAME_BYTES \
            or any(len(part) > MAX_NAME_BYTES for part in rel.split(b"/")):
        raise BadRequest(f"invalid file name or subfolder (NUL byte, a part over "
                         f"{MAX_NAME_BYTES} bytes or a path too long)")
    try:
        root = base.resolve()
        target = (root / subfolder / name).resolve() if subfolder else (root / name).resolve()
    except (OSError, RuntimeError, ValueError):
        raise web.HTTPNotFound(reason="file not found") from None
    if target != root and root not in target.parents:
        raise web.HTTPForbidden(reason="path escapes its folder")
    return target


def split_annotation(filename: str, kind: str | None) -> tuple[str, str]:
    """ComfyUI's ``name.png [output]`` annotation picks the folder."""
    for candidate in FOLDER_TYPES:
        suffix = f" [{candidate}]"
        if filename.endswith(suffix):
            return filename[: -len(suffix)], candidate
    return filename, kind or "output"


def is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # ENAMETOOLONG and friends: it is not there to serve
        return False


def refused(exc: ImageRefused) -> web.Response:
    if isinstance(exc, TooManyPixels):
        return json_error(413, str(exc), "image_too_large", pixels=exc.pixels, limit=exc.limit)
    return json_error(400, str(exc), "not_an_image")


async def view(request: web.Request) -> web.StreamResponse:
    config = services(request).config
    filename = request.query.get("filename", "")
    if not filename:
        raise BadRequest("missing 'filename'")
    filename, kind = split_annotation(filename, request.query.get("type") or None)
    if kind not in FOLDER_TYPES:
        raise BadRequest(f"unknown type {clip(kind)}")
    if filename.startswith("/") or ".." in filename:
        raise BadRequest("invalid file name")
    subfolder = check_subfolder(request.query.get("subfolder", ""))
    path = safe_join(base_dir(config, kind), subfolder, check_name(filename))
    if not is_file(path):
        return json_error(404, "file not found", "not_found")
    preview = request.query.get("preview")
    channel = request.query.get("channel", "rgba")
    if channel not in ("rgba", "rgb", "a"):
        raise BadRequest(f"unknown channel {clip(channel)}")
    if preview or channel != "rgba":
        try:
            data, ctype = await asyncio.to_thread(transcode, path, preview, channel)
        except ImageRefused as exc:
            return refused(exc)
        return web.Response(body=data, content_type=ctype, headers={
            "Content-Disposition": content_disposition_header("inline", filename=path.name)})
    inline = INLINE_TYPES.get(path.suffix.lower())
    disposition = content_disposition_header("inline" if inline else "attachment",
                                             filename=path.name)
    return web.FileResponse(path, headers={"Content-Type": inline or "application/octet-stream",
                                           "Content-Disposition": disposition})


def parse_preview(preview: str | None) -> tuple[str, int]:
    """``webp;90`` → ("webp", 90); quality clamped to 1..100."""
    if not preview:
        return "png", 90
    fmt, _, q = preview.partition(";")
    fmt = fmt.strip().lower()
    if fmt not in ("webp", "jpeg", "png"):
        raise BadRequest(f"unknown preview format {clip(fmt)}")
    q = q.strip()
    if q and not (q.isascii() and q.isdigit() and len(q) <= 3):
        raise BadRequest("preview quality must be an integer from 1 to 100")
    return fmt, max(1, min(100, int(q) if q else 90))


def transcode(path: Path, preview: str | None, channel: str) -> tuple[bytes, str]:
    """Re-encode an image: ``preview=webp;90`` / ``jpeg;80``, ``channel=rgb`` or ``a``.

    The pixel count is checked from the header first (TooManyPixels); NotAnImage if it won't decode.
    """
    fmt, quality = parse_preview(preview)
    with open_checked(path) as image:
        try:
            image.load()
        except Exception:  # Pillow's decoders raise many types on corrupt data
            raise NotAnImage("corrupt or truncated image") from None
        if channel == "rgb":
            image = image.convert("RGB")
        elif channel == "a":
            image = image.convert("RGBA").getchannel("A")
        if fmt == "jpeg" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        buf = io.BytesIO()
        image.save(buf, format=fmt.upper(), quality=quality)
    return buf.getvalue(), f"image/{fmt}"


def stored_name(name: str, suffix_ok: bool, suffix: str) -> str:
    """Keep the uploaded name when its extension already names the decoded format, else fix it:
    ``page.html`` holding a PNG is stored as ``page.png`` (so it is served as what it is)."""
    if suffix_ok:
        return name
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    # Cut by bytes (a file name's limit), never inside a character.
    short = stem.encode("utf-8")[: MAX_NAME_BYTES - 16].decode("utf-8", "ignore")
    return check_name(short + suffix)


async def image_form(request: web.Request) -> tuple:
    """The multipart form of an image upload, checked: ``(form, image part, type, subfolder,
    bare file name)``; BadRequest naming what is wrong, 413 past the body limit."""
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("expected multipart/form-data")
    try:
        form = await request.post()  # enforces client_max_size -> 413
    except (ValueError, HttpProcessingError) as exc:  # HttpProcessingError: an over-long part header
        raise BadRequest(f"malformed form: {exc}") from None
    part = form.get("image")
    if part is None or not hasattr(part, "file") or not getattr(part, "filename", None):
        raise BadRequest("missing 'image' file part")
    kind, subfolder = form.get("type") or "input", form.get("subfolder") or ""
    if not isinstance(kind, str) or not isinstance(subfolder, str):
        raise BadRequest("'type' and 'subfolder' must be plain form fields")
    if kind not in FOLDER_TYPES:
        raise BadRequest(f"unknown type {clip(kind)}")
    raw_name = str(part.filename)
    check_text(raw_name, "file name", 4 * MAX_NAME_BYTES)
    name = check_name(Path(raw_name.replace("\\", "/")).name)
    return form, part, kind, check_subfolder(subfolder), name


async def upload_image(request: web.Request) -> web.Response:
    """Multipart ``image`` (+ ``type``, ``subfolder``, ``overwrite``) saved under input/ etc.

    400 for anything Pillow does not decode as PNG/JPEG/WebP/GIF/BMP/TIFF, 413 above the pixel
    limit (image_limits.max_pixels()) or the body limit.
    """
    config = services(request).config
    form, part, kind, subfolder, name = await image_form(request)
    base = base_dir(config, kind)
    safe_join(base, subfolder, name)  # a subfolder escaping its folder is refused before decoding
    data = part.file.read()
    try:
        info = await asyncio.to_thread(check_image_bytes, data)
    except ImageRefused as exc:
        return refused(exc)
    name = stored_name(name, info.fits_suffix(Path(name).suffix), info.suffix)
    target = safe_join(base, subfolder, name)
    try:
        final = await asyncio.to_thread(store_upload, target, data,
                                        truthy(form.get("overwrite", "")))
    except OSError as exc:  # e.g. a file where a subfolder should be
        return json_error(400, f"cannot store the upload: {exc.strerror or 'invalid path'}",
                          "bad_request")
    return json_response({"name": final.name, "subfolder": subfolder, "type": kind})


def store_upload(target: Path, data: bytes, overwrite: bool) -> Path:
    """Write, reusing a byte-identical existing file, else picking ``name (1).ext`` etc."""
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate, i = target, 0
    digest = hashlib.sha256(data).digest()
    while not overwrite and candidate.exists():
        if candidate.is_file() and hashlib.sha256(candidate.read_bytes()).digest() == digest:
            return candidate
        i += 1
        candidate = target.with_name(f"{target.stem} ({i}){target.suffix}")
    candidate.write_bytes(data)
    return candidate


ROUTES = [
    ("GET", "/view", view),
    ("POST", "/upload/image", upload_image),
]
