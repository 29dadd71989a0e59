"""``POST /upload/mask``, ``GET /view_metadata/{folder}`` and ``GET /extensions`` (ComfyUI's).

``/upload/mask``: multipart ``image`` (the painted mask) plus ``original_ref`` (JSON
``{"filename", "subfolder", "type"}``): the mask's alpha becomes the alpha channel of the
referenced original (resized to it), saved as PNG under ``type``/``subfolder`` with the
original's PNG text chunks kept. Both images pass the upload checks (decoded as images, pixel
limit). ``/view_metadata/{folder}?filename=x.safetensors`` -> the file's ``__metadata__``
object; 404 when the folder, the file or the metadata is absent; never leaves the folder.
"""
from __future__ import annotations

import asyncio
import io
import json
import struct
from pathlib import Path

from aiohttp import web
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from api import strict_json
from api.common import BadRequest, json_error, json_response, services, truthy
from api.files import (FOLDER_TYPES, base_dir, check_name, check_subfolder, clip, image_form,
                       is_file, refused, safe_join, stored_name, store_upload)
from api.info import model_folders
from image_limits import ImageRefused, check_image_bytes, open_checked
from runtime import comfy_folders

MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own limit on its JSON header


def _ref(raw: object) -> tuple[str, str, str]:
    """(type, subfolder, filename) of ``original_ref``; BadRequest naming what is wrong."""
    if not isinstance(raw, str):
        raise BadRequest("'original_ref' (a JSON form field) is required")
    try:
        ref = strict_json.parse(raw)  # untrusted: depth-capped, no RecursionError
    except strict_json.JSONRefused:
        raise BadRequest("'original_ref' must be JSON {filename, subfolder, type}") from None
    if not isinstance(ref, dict) or not isinstance(ref.get("filename"), str):
        raise BadRequest("'original_ref' must be an object with a 'filename'")
    kind, sub = ref.get("type") or "input", ref.get("subfolder") or ""
    if kind not in FOLDER_TYPES or not isinstance(sub, str):
        raise BadRequest(f"'original_ref.type' must be one of {', '.join(FOLDER_TYPES)}")
    return kind, check_subfolder(sub), check_name(ref["filename"])


def _combine(original: Path, mask: bytes, target: Path, overwrite: bool) -> Path:
    with open_checked(original) as img:
        text = {k: v for k, v in getattr(img, "text", {}).items() if isinstance(v, str)}
        rgba = img.convert("RGBA")
    with open_checked(mask) as m:
        alpha = m.convert("RGBA").getchannel("A")
    if alpha.size != rgba.size:
        alpha = alpha.resize(rgba.size, Image.Resampling.LANCZOS)
    rgba.putalpha(alpha)
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    rgba.save(buf, format="PNG", pnginfo=info, compress_level=4)
    return store_upload(target, buf.getvalue(), overwrite)


async def upload_mask(request: web.Request) -> web.Response:
    config = services(request).config
    form, part, kind, subfolder, name = await image_form(request)
    name = stored_name(name, False, ".png")  # the combined image is always a PNG
    ref_kind, ref_sub, ref_name = _ref(form.get("original_ref"))
    original = safe_join(base_dir(config, ref_kind), ref_sub, ref_name)
    if not is_file(original):
        return json_error(404, f"original_ref image {clip(ref_name)} not found", "not_found")
    target = safe_join(base_dir(config, kind), subfolder, name)
    data = part.file.read()
    try:
        await asyncio.to_thread(check_image_bytes, data)
        final = await asyncio.to_thread(_combine, original, data, target,
                                        truthy(form.get("overwrite", "")))
    except ImageRefused as exc:
        return refused(exc)
    except OSError as exc:
        return json_error(400, f"cannot store the mask: {exc.strerror or exc}", "bad_request")
    return json_response({"name": final.name, "subfolder": subfolder, "type": kind})


def read_metadata(path: Path) -> dict | None:
    """The ``__metadata__`` of a safetensors file (None when absent); ValueError if malformed."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("file is shorter than a safetensors header")
        (size,) = struct.unpack("<Q", head)
        if size > MAX_HEADER:
            raise ValueError(f"header of {size} bytes is over {MAX_HEADER}")
        try:
            header = json.loads(f.read(size))
        except RecursionError:  # deeply nested arrays: json recurses per level
            raise ValueError("header nested too deeply") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else None


async def view_metadata(request: web.Request) -> web.Response:
    weights = services(request).config.weights_dir
    folder = request.match_info["folder"]
    key = comfy_folders.folder_key(folder)  # a ComfyUI key reads its subfolders, as /models does
    if folder not in model_folders(weights) and key is None:
        return json_error(404, f"unknown model folder {folder!r}", "not_found")
    filename = request.query.get("filename", "")
    if not filename:
        raise BadRequest("missing query parameter 'filename'")
    sub, _, name = filename.replace("\\", "/").rpartition("/")
    if not name.lower().endswith(comfy_folders.WEIGHT_SUFFIXES):
        raise BadRequest("'filename' must name a .safetensors or .sft file")
    subs = comfy_folders.COMFY_FOLDERS[key] if key is not None else (folder,)
    paths = [safe_join(weights / s, check_subfolder(sub), check_name(name)) for s in subs]
    path = next((p for p in paths if is_file(p)), None)
    if path is None:
        return json_error(404, f"no model file {clip(filename)} in {folder!r}", "not_found")
    try:
        meta = await asyncio.to_thread(read_metadata, path)
    except (ValueError, UnicodeDecodeError) as exc:
        return json_error(400, f"{clip(filename)} is not a readable safetensors file: {exc}",
                          "bad_request")
    except OSError as exc:  # unreadable (permissions, I/O error): named, not a 500
        return json_error(400, f"cannot read {clip(filename)}: {exc.strerror or exc}",
                          "bad_request")
    if meta is None:
        return json_error(404, f"{clip(filename)} has no __metadata__", "not_found")
    return json_response(meta)


async def extensions(request: web.Request) -> web.Response:
    """ComfyUI lists JS extension URLs for its frontend; our editor loads none this way."""
    return json_response([])


ROUTES = [
    ("POST", "/upload/mask", upload_mask),
    ("GET", "/view_metadata/{folder}", view_metadata),
    ("GET", "/extensions", extensions),
]
