"""One catalogue of what is on disk: every weights file described by its keys, never its name.

`describe(path)` says what a file holds (Stage C/B/A, text encoder, EffNet, Previewer, CLIP vision, ControlNet,
all-in-one parts, or a LoRA and the stage it targets), with preset, dtype, format and size, and names its
problems: not safetensors, truncated, a partial download. `entries(weights_dir, folder)` adds the folder's
own problem (a Stage B file in stage_c/). The start-up report (runtime/weights.py), `GET /models/{folder}?details=1`
(api/info.py) and the loader combos (runtime/env.py, nodes/lora.py) all read from here.

Descriptions read headers only (kilobytes, even for a 7 GB file) and are cached per path and file stamp (runtime/stamps.py): a
listing re-stats the folder each time, so new or replaced files appear without a restart, and unchanged
ones cost one stat. sha256 hashes are never computed here: see runtime/hashes.py (lazy, background, persisted).

Free of torch at import time (the API layer imports it); detection imports it lazily.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runtime import comfy_folders as comfy
from runtime.stamps import StampCache

# Our per-kind folders (runtime/weights.py KIND_FOLDERS) plus controlnet/, which is also ComfyUI's name.
KIND_OF_FOLDER = {"stage_c": "stage_c", "stage_b": "stage_b", "stage_a": "stage_a", "text_encoder": "text_encoder",
                  "effnet": "effnet", "previewer": "previewer", "clip_vision": "clip_vision",
                  "controlnet": "controlnet"}
LORA_FOLDER = "loras"
# Names download tools give a file still being written: browsers, curl/wget scripts, huggingface_hub.
PARTIAL_SUFFIXES = (".incomplete", ".part", ".partial", ".crdownload", ".download", ".tmp")
TITLES = {"stage_c": "Stage C", "stage_b": "Stage B", "stage_a": "Stage A", "effnet": "EfficientNet encoder",
          "previewer": "Previewer", "text_encoder": "CLIP text encoder", "clip_vision": "CLIP vision encoder",
          "controlnet": "ControlNet", "lora": "LoRA"}


@dataclass(frozen=True)
class Part:
    """One network inside a file (several in an all-in-one)."""

    kind: str
    preset: str | None
    dtype: str
    loadable: bool
    problems: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{TITLES[self.kind]} ({self.preset or 'unknown size'}, {self.dtype})"


@dataclass(frozen=True)
class FileInfo:
    """What one file is. `format`: 'original' | 'all-in-one' | 'diffusers' | 'transformers' | 'lora' |
    'not safetensors' | 'truncated' | 'partial download' | 'unknown'; `size` in bytes; `kinds` the loadable
    kinds (plus 'lora' for a LoRA); `lora` a models.lora.classify.LoraInfo or None."""

    size: int
    format: str
    parts: tuple[Part, ...] = ()
    kinds: tuple[str, ...] = ()
    lora: object | None = None
    demo: bool = False
    problems: tuple[str, ...] = ()

    @property
    def readable(self) -> bool:
        return self.format not in ("not safetensors", "truncated", "partial download", "unreadable")

    def summary(self) -> str:
        """Short text for listings: 'Stage C (lite, bfloat16)', 'LoRA for Stage C (prior), kohya, rank 4, …'."""
        if self.lora is not None:
            return self.lora.describe()
        held = [p.describe() for p in self.parts if p.loadable]
        return (f"all-in-one: {', '.join(held)}" if len(held) > 1 else held[0]) if held else "no loadable network"


@dataclass(frozen=True)
class Entry:
    """A file as listed in one folder: its name there, absolute path, description and every problem."""

    folder: str
    name: str
    path: Path
    info: FileInfo
    problems: tuple[str, ...]


_DESCRIBED: StampCache[FileInfo] = StampCache()


def describe(path: Path) -> FileInfo:
    """What `path` holds, cached per resolved path and file stamp (`runtime.stamps`): a replaced file is
    described again."""
    try:
        path = Path(path).resolve()
        return _DESCRIBED.get(path, lambda: _describe(path, path.stat().st_size))
    except (OSError, RuntimeError) as e:
        return FileInfo(0, "unreadable", problems=(f"unreadable: {getattr(e, 'strerror', None) or e}",))


def _describe(path: Path, size: int) -> FileInfo:
    from models.loading import LoadError, detect
    from models.loading.safetensors_io import read_file_header
    from models.lora.classify import describe_file

    if path.name.lower().endswith(PARTIAL_SUFFIXES):
        return FileInfo(size, "partial download", problems=(
            f"partial download: {path.name} is a download that did not finish; let it finish or download again",))
    try:
        header = read_file_header(path)
    except LoadError as e:
        kind = "truncated" if "truncated" in str(e) else "not safetensors"
        hint = " (a partial download?)" if kind == "truncated" else ""
        return FileInfo(size, kind, problems=(f"{kind}: {e}{hint}",))
    demo = "demo" in header.metadata
    try:
        report = detect(path)
    except LoadError as e:
        return FileInfo(size, "unreadable", demo=demo, problems=(f"unreadable: {e}",))
    parts = tuple(Part(c.kind, c.preset, c.dtype, c.loadable, c.problems) for c in report.components)
    if parts:
        problems = tuple(f"{TITLES[p.kind]}: {q}" for p in parts for q in p.problems)
        kinds = tuple(k for k in KIND_OF_FOLDER.values() if any(p.kind == k and p.loadable for p in parts))
        return FileInfo(size, report.format, parts, kinds, None, demo, problems)
    try:
        lora = describe_file(path)
    except LoadError as e:
        return FileInfo(size, "unreadable", demo=demo, problems=(f"unreadable: {e}",))
    if lora is not None:
        return FileInfo(size, "lora", (), ("lora",), lora, demo)
    return FileInfo(size, report.format, demo=demo, problems=tuple(report.problems))


def placement_problem(folder: str, info: FileInfo) -> str | None:
    """Why a readable file does not belong in `folder` (a Stage B file in stage_c/, a LoRA in stage_b/), or None."""
    if not info.readable:
        return None
    want = KIND_OF_FOLDER.get(folder) or ("lora" if folder == LORA_FOLDER else None)
    if want is None or want in info.kinds or not info.kinds:
        return None  # not one of our typed folders, the right kind, or nothing loadable (its own problem says so)
    held = " and ".join(info.lora.describe() if k == "lora" else TITLES[k] for k in info.kinds)
    home = [LORA_FOLDER if k == "lora" else next(f for f, v in KIND_OF_FOLDER.items() if v == k) for k in info.kinds]
    return (f"wrong folder: this file holds {held}, not a {TITLES[want]}; "
            f"move it to {' or '.join(h + '/' for h in home)}")


def usable(entry: Entry) -> bool:
    """True when the loaders of the entry's folder offer it (the folder's kind, or a LoRA in loras/)."""
    want = KIND_OF_FOLDER.get(entry.folder) or ("lora" if entry.folder == LORA_FOLDER else None)
    return want in entry.info.kinds if want else bool(entry.info.kinds)


def _files(root: Path) -> list[str]:
    """Weight files (comfy_folders.list_files) plus unfinished downloads, relative posix paths."""
    names = comfy.list_files(root)
    if root.is_dir():
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.lower().endswith(PARTIAL_SUFFIXES) and not Path(dirpath, name).is_symlink():
                    names.append((Path(dirpath, name).relative_to(root)).as_posix())
    return sorted(names, key=lambda n: (Path(n).name.startswith("demo_"), n.lower()))


def entries(weights_dir: Path, folder: str) -> list[Entry]:
    """Every weights file (and unfinished download) in one subfolder, sorted, demo files last."""
    root = Path(weights_dir) / folder
    out = []
    for name in _files(root):
        info = describe(root / name)
        wrong = placement_problem(folder, info)
        out.append(Entry(folder, name, root / name, info, info.problems + ((wrong,) if wrong else ())))
    return out


def loadable(weights_dir: Path, kind: str) -> list[str]:
    """What a loader of `kind` offers: files of its folder holding that kind, then ComfyUI-folder files
    (`sub/name`) whose keys hold it (runtime/comfy_folders.offered). Real files first in each group."""
    folder = next((f for f, k in KIND_OF_FOLDER.items() if k == kind), kind)
    own = [e.name for e in entries(weights_dir, folder) if kind in e.info.kinds]
    if kind not in KIND_OF_FOLDER.values():
        return own
    return own + [n for n in comfy.offered(weights_dir, kind) if n not in own]


def loras(weights_dir: Path, stage: str | None = None) -> list[str]:
    """LoRA files of loras/ (every one when `stage` is None, else those a `stage` LoRA node can apply)."""
    return [e.name for e in entries(weights_dir, LORA_FOLDER)
            if e.info.lora is not None and (stage is None or e.info.lora.fits(stage))]


def details(entry: Entry, sha256: str | None) -> dict:
    """JSON description of a listed file (GET /models/{folder}?details=1); `sha256` None while not hashed."""
    info, lora = entry.info, entry.info.lora
    return {
        "name": entry.name, "size": info.size, "format": info.format, "kinds": list(info.kinds),
        "parts": [{"kind": p.kind, "preset": p.preset, "dtype": p.dtype, "loadable": p.loadable,
                   "problems": list(p.problems)} for p in info.parts],
        "lora": None if lora is None else {"targets": list(lora.targets), "formats": list(lora.formats),
                                           "rank": list(lora.ranks), "alpha": lora.alpha,
                                           "tensors": lora.tensors, "layers": lora.layers},
        "demo": info.demo, "problems": list(entry.problems), "sha256": sha256,
    }
