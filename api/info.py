"""Catalogue, models, system stats, feature flags and ``/free``."""
from __future__ import annotations

import asyncio
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from aiohttp import web

from api.common import json_error, json_response, read_object, services, truthy
from api.ws import server_features
from engine.catalogue import catalogue, node_info
from runtime import catalogue as files_catalogue, comfy_folders
from runtime.hashes import store_for

VERSION = "0.1.0"
# Weights subfolders the loaders know, then ComfyUI's folder keys (read beside ours: runtime/comfy_folders.py);
# other folders that exist on disk are listed too. ComfyUI's subfolders (`unet/`, `clip/`) are not keys of their
# own: their files are listed under `diffusion_models` / `text_encoders`, and the legacy names still answer.
OUR_FOLDERS = ("stage_c", "stage_b", "stage_a", "text_encoder", "effnet", "previewer", "loras")
MODEL_FOLDERS = OUR_FOLDERS + tuple(k for k in comfy_folders.COMFY_FOLDERS if k not in OUR_FOLDERS)


async def object_info(request: web.Request) -> web.Response:
    svc = services(request)
    return json_response(await asyncio.to_thread(catalogue, svc.registry, svc.env))


async def object_info_one(request: web.Request) -> web.Response:
    svc = services(request)
    name = request.match_info["node_class"]
    cls = svc.registry.get(name)
    if cls is None:
        return json_response({})
    return json_response({name: await asyncio.to_thread(node_info, name, cls, svc.env)})


def model_folders(weights_dir: Path) -> list[str]:
    extra = []
    if weights_dir.is_dir():
        extra = sorted(p.name for p in weights_dir.iterdir()
                       if p.is_dir() and not p.name.startswith(".") and p.name not in MODEL_FOLDERS
                       and p.name not in comfy_folders.ALL_SUBFOLDERS)
    return list(MODEL_FOLDERS) + extra


def list_models(weights_dir: Path, folder: str) -> list[str]:
    """Model files of a folder, relative posix paths, never following links out of it.

    A ComfyUI folder key (or legacy `unet`/`clip`) lists as ComfyUI does: its subfolders merged, files whose
    header cannot be read left out (runtime/comfy_folders.py).
    """
    if comfy_folders.folder_key(folder) is not None:
        return comfy_folders.comfy_files(weights_dir, folder)
    return sorted(comfy_folders.list_files(weights_dir / folder))


async def models(request: web.Request) -> web.Response:
    return json_response(model_folders(services(request).config.weights_dir))


def list_details(weights_dir: Path, folder: str, data_dir: Path | None) -> list[dict]:
    """`GET /models/{folder}?details=1`: every file of the folder (unreadable ones included, with their
    problems) described from its keys (runtime/catalogue.py). A sha256 not yet known is null and queued for
    the background hasher (runtime/hashes.py); a later request returns it."""
    key = comfy_folders.folder_key(folder)
    subs = comfy_folders.COMFY_FOLDERS[key] if key is not None else (folder,)
    seen: dict[str, files_catalogue.Entry] = {}
    for sub in subs:  # ComfyUI's search order: the first subfolder holding a name wins, as in the plain list
        for entry in files_catalogue.entries(weights_dir, sub):
            seen.setdefault(entry.name, entry)
    store = store_for(data_dir)
    listed = sorted(seen.values(), key=lambda e: e.name)
    hashes = [store.get(e.path) for e in listed]
    store.request(e.path for e, h in zip(listed, hashes) if h is None and e.info.format != "partial download")
    return [files_catalogue.details(e, h) for e, h in zip(listed, hashes)]


async def models_in(request: web.Request) -> web.Response:
    """ComfyUI's route: a list of file names (what its clients expect). With `?details=1` (or true/yes), a list
    of objects instead: name, size (bytes), format, kinds, parts (kind, preset, dtype, loadable, problems),
    lora (targets, formats, rank, alpha, tensors, layers) or null, demo, problems, sha256 (null until hashed)."""
    svc = services(request)
    weights = svc.config.weights_dir
    folder = request.match_info["folder"]
    if folder not in model_folders(weights) and comfy_folders.folder_key(folder) is None:
        return json_error(404, f"unknown model folder {folder!r}", "not_found")
    if truthy(request.query.get("details", "")):
        data_dir = getattr(svc.config, "data_dir", None)
        return json_response(await asyncio.to_thread(list_details, weights, folder, data_dir))
    env = services(request).env
    if comfy_folders.folder_key(folder) is not None and hasattr(env, "comfy_files"):  # extra folders too
        return json_response(await asyncio.to_thread(env.comfy_files, folder))
    return json_response(await asyncio.to_thread(list_models, weights, folder))


async def embeddings(request: web.Request) -> web.Response:
    return json_response([])  # Stable Cascade textual-inversion embeddings are not supported


def _ram() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0, 0


def _devices() -> list[dict]:
    torch = sys.modules.get("torch")  # only report CUDA if the nodes already imported torch
    if torch is not None and torch.cuda.is_available():
        out = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append({"name": torch.cuda.get_device_name(i), "type": "cuda", "index": i,
                        "vram_total": total, "vram_free": free,
                        "torch_vram_total": torch.cuda.memory_reserved(i),
                        "torch_vram_free": torch.cuda.memory_reserved(i)
                        - torch.cuda.memory_allocated(i)})
        return out
    total, free = _ram()
    return [{"name": "cpu", "type": "cpu", "index": None, "vram_total": total, "vram_free": free,
             "torch_vram_total": 0, "torch_vram_free": 0}]


def _torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "not installed"


def public_argv(argv: list[str]) -> list[str]:
    """`argv` with the value of ``--token`` hidden: ``--token X``, ``--token=X`` and the
    abbreviations argparse accepts (``--tok X``)."""
    out, hide_next = [], False
    for arg in argv:
        option, eq, _ = arg.partition("=")
        is_token = len(option) >= 4 and "--token".startswith(option)
        if hide_next:
            out.append("***")
        elif is_token and eq:
            out.append(option + "=***")
        else:
            out.append(arg)
        hide_next = is_token and not eq
    return out


async def system_stats(request: web.Request) -> web.Response:
    total, free = _ram()
    return json_response({
        "system": {"os": platform.system().lower() or os.name, "ram_total": total,
                   "ram_free": free, "comfyui_version": VERSION, "cascade_studio_version": VERSION,
                   "python_version": sys.version, "pytorch_version": _torch_version(),
                   "embedded_python": False, "argv": public_argv(sys.argv)},
        "devices": await asyncio.to_thread(_devices),
        # Who runs jobs: the in-process worker, or one entry per Ray worker (--workers/--ray-address).
        "workers": await asyncio.to_thread(services(request).worker.describe)})


async def features(request: web.Request) -> web.Response:
    return json_response(server_features(services(request).config.max_body_bytes))


async def free(request: web.Request) -> web.Response:
    body = await read_object(request, optional=True)
    services(request).worker.request_free(truthy(body.get("unload_models", False)),
                                          truthy(body.get("free_memory", False)))
    return json_response({})


ROUTES = [
    ("GET", "/object_info", object_info),
    ("GET", "/object_info/{node_class}", object_info_one),
    ("GET", "/models", models),
    ("GET", "/models/{folder}", models_in),
    ("GET", "/embeddings", embeddings),
    ("GET", "/system_stats", system_stats),
    ("GET", "/features", features),
    ("POST", "/free", free),
]
