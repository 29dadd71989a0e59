"""ComfyUI's model folders inside our weights folder: listing, safe paths and what each file holds.

ComfyUI users keep `checkpoints/`, `diffusion_models/` (legacy `unet/`), `text_encoders/` (legacy `clip/`),
`vae/`, `clip_vision/`, `controlnet/` and `loras/`. They are read beside our per-kind folders:
- `comfy_files(folder)` lists a ComfyUI folder key as ComfyUI's loaders do (for the ComfyUI node family);
- `offered(kind)` lists the files in those folders whose *keys* hold a network of `kind`, for our own loaders
  (an all-in-one `stable_cascade_stage_c.safetensors` is offered to Stage C, text encoder, EffNet and previewer).
What a file holds is decided by `models.loading.detect` (headers only) and cached per path and file stamp (runtime/stamps.py), so
listing stays fast. A file whose header cannot be read is listed nowhere; the start-up report names it.

This module stays free of torch at import time (the API layer imports it); detection imports it lazily.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from runtime.stamps import StampCache

WEIGHT_SUFFIXES = (".safetensors", ".sft")

# ComfyUI's folder keys -> the weights subfolders read for each, in ComfyUI's search order.
COMFY_FOLDERS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints",),
    "diffusion_models": ("unet", "diffusion_models"),
    "text_encoders": ("text_encoders", "clip"),
    "vae": ("vae",),
    "clip_vision": ("clip_vision",),
    "controlnet": ("controlnet",),
    "loras": ("loras",),
}
# ComfyUI's legacy keys, still used by older nodes and clients.
COMFY_LEGACY = {"unet": "diffusion_models", "clip": "text_encoders"}
# Subfolders whose files may hold our networks (offered to our loaders by kind). clip_vision/, controlnet/
# and loras/ hold other kinds of file, which our typed loaders never take.
MODEL_SUBFOLDERS = ("checkpoints", "unet", "diffusion_models", "text_encoders", "clip", "vae")
ALL_SUBFOLDERS = tuple(dict.fromkeys(s for subs in COMFY_FOLDERS.values() for s in subs))


def list_files(root: Path) -> list[str]:
    """Weight files under `root` (relative posix paths, nested folders allowed), sorted case-insensitively.

    A file (or folder) that is a symlink leading out of `root` is left out: `resolve_in` refuses it too,
    so a listing never offers a file that cannot be loaded. Hidden folders are skipped, and linked folders
    are not descended (as before: no loops, no trees outside the weights folder).
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.lower().endswith(WEIGHT_SUFFIXES):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            # The walk never enters linked folders, so only a linked file can lead out of `root`:
            # resolve just those (a full resolve per file made every listing slow on big folders).
            if resolve_in(root, rel) if path.is_symlink() else path.is_file():
                found.append(rel)
    return sorted(found, key=str.lower)


def resolve_in(root: Path, name: str) -> Path | None:
    """Absolute path of file `name` inside `root`, or None if missing or (through `..` or a symlink) outside.

    Raises ValueError for names the OS cannot represent (a NUL byte), as Path.resolve does.
    """
    try:
        real_root = Path(root).resolve()
        path = (real_root / name).resolve()
    except RuntimeError:  # a symlink loop (Python < 3.13 raises RuntimeError, later ones OSError): no file
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    if real_root not in path.parents or not path.is_file():
        return None
    return path


def folder_key(folder: str) -> str | None:
    """The ComfyUI folder key for a key or legacy key ('unet' -> 'diffusion_models'); None if unknown."""
    key = COMFY_LEGACY.get(folder, folder)
    return key if key in COMFY_FOLDERS else None


@dataclass(frozen=True)
class Detected:
    """What one file holds: loadable Stable Cascade kinds, whether it is demo weights, or why it is unreadable."""

    kinds: tuple[str, ...] = ()
    demo: bool = False
    error: str | None = None
    others: tuple[str, ...] = ()  # networks found but not loadable, with their problems
    presets: tuple[tuple[str, str | None], ...] = ()  # (kind, preset such as "lite") per loadable kind

    def preset(self, kind: str) -> str | None:
        return dict(self.presets).get(kind)


_DETECTED: StampCache[Detected] = StampCache()


def detected(path: Path) -> Detected:
    """Detection of `path` (a file or a diffusers folder), cached per resolved path and file stamp
    (`runtime.stamps`): a replaced file is detected again."""
    try:  # one key per file: the loaders' resolved paths and the listings' relative ones meet here
        given = Path(path).absolute()  # detected as named: a hub cache's blob has no .safetensors name
        return _DETECTED.get(given, lambda: _detect(given))
    except (OSError, RuntimeError) as e:
        return Detected(error=f"cannot read the file ({getattr(e, 'strerror', None) or e})")


def _detect(path: Path) -> Detected:
    from models.loading import LoadError, detect
    from models.loading.safetensors_io import read_file_header

    try:
        report = detect(path)
        demo = path.is_file() and "demo" in read_file_header(path).metadata  # a folder is a diffusers one
    except LoadError as e:
        return Detected(error=str(e))
    except OSError as e:
        return Detected(error=f"cannot read the file ({e.strerror or e})")
    kinds = tuple(dict.fromkeys(c.kind for c in report.components if c.loadable))
    others = tuple(f"{c.kind}: {'; '.join(c.problems) or 'unknown size'}"
                   for c in report.components if not c.loadable)
    presets = tuple((c.kind, c.preset) for c in report.components if c.loadable)
    return Detected(kinds, demo, None, others, presets)


def comfy_files(weights_dir: Path, folder: str) -> list[str]:
    """File names in a ComfyUI folder key (or legacy key), as ComfyUI's loaders list them: relative to the
    folder, merged over its subfolders (the first one wins a name), sorted; unreadable files left out.

    Raises KeyError for a folder that is no ComfyUI model folder.
    """
    key = folder_key(folder)
    if key is None:
        raise KeyError(folder)
    names: dict[str, None] = {}
    for sub in COMFY_FOLDERS[key]:
        root = Path(weights_dir) / sub
        for name in list_files(root):
            if name not in names and detected(root / name).error is None:
                names[name] = None
    return sorted(names)


def comfy_path(weights_dir: Path, folder: str, name: str) -> Path | None:
    """Absolute path of a name `comfy_files(folder)` lists (first subfolder holding it), else None."""
    key = folder_key(folder)
    if key is None:
        return None
    for sub in COMFY_FOLDERS[key]:
        path = resolve_in(Path(weights_dir) / sub, name)
        if path is not None and detected(path).error is None:  # as comfy_files: unreadable ones skipped
            return path
    return None


def offered(weights_dir: Path, kind: str) -> list[str]:
    """`sub/name` of every file in ComfyUI's model folders whose keys hold a loadable `kind` network,
    real files first, demo weights last."""
    found = []
    for sub in MODEL_SUBFOLDERS:
        root = Path(weights_dir) / sub
        for name in list_files(root):
            d = detected(root / name)
            if kind in d.kinds:
                found.append((d.demo, f"{sub}/{name}"))
    return [name for _, name in sorted(found, key=lambda t: t[0])]


def offered_path(weights_dir: Path, kind: str, name: str) -> Path | None:
    """Absolute path of an `offered(kind)` name (`sub/rest`), or None when it is not one."""
    sub, _, rest = name.partition("/")
    if sub not in MODEL_SUBFOLDERS or not rest:
        return None
    path = resolve_in(Path(weights_dir) / sub, rest)
    return path if path is not None and kind in detected(path).kinds else None


def report_lines(weights_dir: Path) -> list[str]:
    """Start-up listing lines for the ComfyUI folders present: each file with what it holds, or UNREADABLE."""
    from models.loading.networks import KIND_TITLES

    lines = []
    for sub in ALL_SUBFOLDERS:
        root = Path(weights_dir) / sub
        if sub == "loras" or not root.is_dir():
            continue  # loras/ is also ours and already listed
        entries = []
        for name in list_files(root):
            d = detected(root / name)
            if d.error is not None:
                entries.append(f"{name} [UNREADABLE, listed nowhere: {d.error}]")
                continue
            held = [KIND_TITLES.get(k, k) for k in d.kinds] + [f"not loadable {o}" for o in d.others]
            tags = ([", ".join(held)] if held and sub in MODEL_SUBFOLDERS else []) + (["demo"] if d.demo else [])
            entries.append(f"{name} [{'; '.join(tags)}]" if tags else name)
        lines.append(f"  {sub}/ (ComfyUI): {', '.join(entries) if entries else '(empty)'}")
    return lines
