"""``GET /view`` and ``POST /upload/image``; paths never leave their base folders."""
from __future__ import annotations

import asyncio
import hashlib
import io
import mimetypes
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from api.common import BadRequest, json_error, services, truthy
from config import Config

FOLDER_TYPES = ("output", "input", "temp")
# Served as downloads, never rendered: an uploaded page must not run script on our origin.
UNSAFE_TYPES = ("text/html", "text/javascript", "application/javascript", "text/css",
                "image/svg+xml", "application/xhtml+xml")


def base_dir(config: Config, kind: str) -> Path:
    return {"output": config.output_dir, "input": config.input_dir, "temp": config.temp_dir}[kind]


def check_name(name: str) -> str:
    """A bare file name: no separators, no ``..``, not empty, not absolute."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name \
            or ".." in name:
        raise BadRequest(f"invalid file name {name!r}")
    return name


# NAME_MAX of common file systems; a longer part (or a path past PATH_MAX) fails in the OS.
MAX_NAME_BYTES, MAX_PATH_BYTES = 255, 1024


def safe_join(base: Path, subfolder: str, name: str) -> Path:
    """`base/subfolder/name` resolved (symlinks included); web.HTTPForbidden if it escapes.

    BadRequest for what the OS would refuse: NUL bytes, text that is not Unicode (lone
    surrogates, undecodable multipart names), parts over MAX_NAME_BYTES, over MAX_PATH_BYTES.
    """
    if "\x00" in subfolder:
        raise web.HTTPForbidden(reason="invalid subfolder")
    try:
        rel = f"{subfolder}/{name}".encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("file name or subfolder is not valid Unicode") from None
    if b"\x00" in rel or len(rel) > MAX_PATH_BYTES \
            or any(len(part) > MAX_NAME_BYTES for part in rel.split(b"/")):
        raise BadRequest(f"invalid file name or subfolder (NUL byte, a part over "
                         f"{MAX_NAME_BYTES} bytes or over {MAX_PATH_BYTES} in all)")
    root = base.resolve()
    target = (root / subfolder / name).resolve() if subfolder else (root / name).resolve()
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


async def view(request: web.Request) -> web.StreamResponse:
    config = services(request).config
    filename = request.query.get("filename", "")
    if not filename:
        raise BadRequest("missing 'filename'")
    filename, kind = split_annotation(filename, request.query.get("type") or None)
    if kind not in FOLDER_TYPES:
        raise BadRequest(f"unknown type {kind!r}")
    if filename.startswith("/") or ".." in filename:
        raise BadRequest("invalid file name")
    subfolder = request.query.get("subfolder", "")
    if subfolder.startswith("/") or subfolder.startswith("\\"):
        raise web.HTTPForbidden(reason="absolute subfolder")
    path = safe_join(base_dir(config, kind), subfolder, check_name(filename))
    if not path.is_file():
        return json_error(404, "file not found", "not_found")
    preview = request.query.get("preview")
    channel = request.query.get("channel", "rgba")
    if channel not in ("rgba", "rgb", "a"):
        raise BadRequest(f"unknown channel {channel!r}")
    if preview or channel != "rgba":
        data, ctype = await asyncio.to_thread(transcode, path, preview, channel)
        return web.Response(body=data, content_type=ctype, headers={
            "Content-Disposition": f'filename="{path.name}"'})
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if ctype in UNSAFE_TYPES:
        ctype = "application/octet-stream"
    return web.FileResponse(path, headers={"Content-Type": ctype,
                                           "Content-Disposition": f'filename="{path.name}"',
                                           "X-Content-Type-Options": "nosniff"})


def transcode(path: Path, preview: str | None, channel: str) -> tuple[bytes, str]:
    """Re-encode an image: ``preview=webp;90`` / ``jpeg;80``, ``channel=rgb`` or ``a``."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError):
        raise BadRequest("not an image") from None
    if channel == "rgb":
        image = image.convert("RGB")
    elif channel == "a":
        image = image.convert("RGBA").getchannel("A")
    fmt, quality = "png", 90
    if preview:
        fmt, _, q = preview.partition(";")
        fmt = fmt.strip().lower()
        if fmt not in ("webp", "jpeg", "png"):
            raise BadRequest(f"unknown preview format {fmt!r}")
        try:
            quality = int(q) if q else 90
        except ValueError:
            raise BadRequest("preview quality must be an integer") from None
        if fmt == "jpeg" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format=fmt.upper(), quality=max(1, min(100, quality)))
    return buf.getvalue(), f"image/{fmt}"


async def upload_image(request: web.Request) -> web.Response:
    """Multipart ``image`` (+ ``type``, ``subfolder``, ``overwrite``) saved under input/ etc."""
    config = services(request).config
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("expected multipart/form-data")
    try:
        form = await request.post()  # enforces client_max_size -> 413
    except (ValueError, BadHttpMessage) as exc:  # BadHttpMessage: a malformed part header
        raise BadRequest(f"malformed form: {exc}") from None
    part = form.get("image")
    if part is None or not hasattr(part, "file") or not getattr(part, "filename", None):
        raise BadRequest("missing 'image' file part")
    kind = str(form.get("type") or "input")
    if kind not in FOLDER_TYPES:
        raise BadRequest(f"unknown type {kind!r}")
    subfolder = str(form.get("subfolder") or "")
    name = check_name(Path(part.filename.replace("\\", "/")).name)
    data = part.file.read()
    base = base_dir(config, kind)
    target = safe_join(base, subfolder, name)
    final = await asyncio.to_thread(store_upload, target, data, truthy(form.get("overwrite", "")))
    return web.json_response({"name": final.name, "subfolder": subfolder, "type": kind})


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
