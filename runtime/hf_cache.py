"""The official Stable Cascade repos in the user's Hugging Face cache, listed and loaded in place.

The hub cache (HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME or ~/.cache, then huggingface/hub) holds
`models--org--name/` with `refs/<branch>` (a commit hash), `snapshots/<commit>/…` (the repo's tree, files
symlinked into `blobs/`) and `blobs/`. For stabilityai/stable-cascade and stabilityai/stable-cascade-prior:
- a diffusers folder (a snapshot folder with a config.json: prior/, decoder/, decoder_lite/, text_encoder/,
  vqgan/, image_encoder/, with or without bf16 variants) is one entry, loaded as a folder;
- any other weights file (stage_c_bf16.safetensors, effnet_encoder.safetensors,
  comfyui_checkpoints/stable_cascade_stage_c.safetensors, …) is one entry.
Names are `hf:org/name/<path in the repo>`. Snapshots are merged: the one `refs/main` names first, then the
others newest first, so files fetched at different revisions are all found (the first snapshot wins a name).
What an entry holds is decided by its keys (`comfy_folders.detected`), never its name.

Safety: only listed names resolve, and an entry whose files (symlinks followed) lead outside its repo
folder is not listed. `scan_cache_dir` (huggingface_hub's cache scanner, which walks the whole cache)
serves the start-up report only; listings walk the two official repos alone, so new downloads appear at once.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from runtime import comfy_folders as cf

OFFICIAL_REPOS = ("stabilityai/stable-cascade", "stabilityai/stable-cascade-prior")
PREFIX = "hf:"
# ComfyUI folder key per kind held alone; a file holding several kinds is an all-in-one checkpoint.
_KEY_OF_KIND = {"stage_c": "diffusion_models", "stage_b": "diffusion_models", "text_encoder": "text_encoders",
                "stage_a": "vae", "effnet": "vae", "previewer": "vae", "clip_vision": "clip_vision",
                "controlnet": "controlnet"}


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """The hub cache folder the Hugging Face libraries use under this environment."""
    if environ.get("HF_HUB_CACHE"):
        return Path(environ["HF_HUB_CACHE"]).expanduser()
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"]).expanduser() / "hub"
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base).expanduser() / "huggingface" / "hub"


def _repo_dir(cache_dir: Path, repo: str) -> Path:
    return cache_dir / ("models--" + repo.replace("/", "--"))


def _snapshots(repo_dir: Path) -> list[Path]:
    """Snapshot folders, the one refs/main names first, then the others newest first."""
    snaps = repo_dir / "snapshots"
    if not snaps.is_dir():
        return []
    found = sorted((p for p in snaps.iterdir() if p.is_dir() and not p.is_symlink()),
                   key=lambda p: p.stat().st_mtime_ns, reverse=True)
    try:
        main = (repo_dir / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        main = ""
    return sorted(found, key=lambda p: p.name != main)  # stable: newest-first order kept for the rest


def _inside(path: Path, real_repo: Path) -> bool:
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13): not a file we offer
        return False
    return real == real_repo or real_repo in real.parents


def _entries_in(snapshot: Path, real_repo: Path) -> dict[str, tuple[Path, bool]]:
    """{path in repo: (path, is_folder)} for one snapshot; entries leading out of the repo left out."""
    out: dict[str, tuple[Path, bool]] = {}
    for dirpath, dirnames, filenames in os.walk(snapshot):  # linked folders are not descended
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        weights = [n for n in filenames if n.lower().endswith(cf.WEIGHT_SUFFIXES)]
        if here != snapshot and "config.json" in filenames and weights:
            files = [here / n for n in filenames]
            if all(_inside(f, real_repo) and f.is_file() for f in files):
                out[here.relative_to(snapshot).as_posix()] = (here, True)
            dirnames[:] = []  # a diffusers folder is one entry
            continue
        for name in sorted(weights):
            path = here / name
            if _inside(path, real_repo) and path.is_file():
                out[path.relative_to(snapshot).as_posix()] = (path, False)
    return out


class HFCache:
    """The official repos in one hub cache folder (None: no cache is read)."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    def entries(self) -> dict[str, tuple[Path, bool]]:
        """{`hf:org/name/rel`: (absolute path, is a diffusers folder)} over every official repo's snapshots."""
        out: dict[str, tuple[Path, bool]] = {}
        if self.cache_dir is None:
            return out
        for repo in OFFICIAL_REPOS:
            repo_dir = _repo_dir(self.cache_dir, repo)
            if not repo_dir.is_dir():
                continue
            real_repo = repo_dir.resolve()
            for snap in _snapshots(repo_dir):
                for rel, entry in _entries_in(snap, real_repo).items():
                    out.setdefault(f"{PREFIX}{repo}/{rel}", entry)
        return out

    def offered(self, kind: str) -> list[str]:
        """Entries (diffusers folders and single files) holding a loadable network of `kind`."""
        return [n for n, (p, _) in sorted(self.entries().items()) if kind in cf.detected(p).kinds]

    def path(self, kind: str, name: str) -> Path | None:
        """Absolute path of an `offered(kind)` name, else None (names never listed resolve to nothing)."""
        entry = self.entries().get(name) if isinstance(name, str) and name.startswith(PREFIX) else None
        return entry[0] if entry is not None and kind in cf.detected(entry[0]).kinds else None

    def comfy_files(self, folder: str) -> list[str]:
        """Single files for a ComfyUI folder key by what they hold: several kinds → checkpoints,
        one kind → its folder (Stage B → diffusion_models, Stage A → vae, …)."""
        key = cf.folder_key(folder)
        return [n for n, (p, is_dir) in sorted(self.entries().items())
                if not is_dir and key is not None and self._key(p) == key]

    def comfy_path(self, folder: str, name: str) -> Path | None:
        """Absolute path of a name `comfy_files(folder)` lists, else None."""
        entry = self.entries().get(name) if isinstance(name, str) and name.startswith(PREFIX) else None
        if entry is None or entry[1] or self._key(entry[0]) != cf.folder_key(folder):
            return None
        return entry[0]

    @staticmethod
    def _key(path: Path) -> str | None:
        kinds = cf.detected(path).kinds
        if len(kinds) > 1:
            return "checkpoints"
        return _KEY_OF_KIND.get(kinds[0]) if kinds else None

    def report_lines(self) -> list[str]:
        """Start-up lines: the official repos found (revisions, size on disk) and what each entry holds."""
        if self.cache_dir is None or not any(_repo_dir(self.cache_dir, r).is_dir() for r in OFFICIAL_REPOS):
            return []
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound, CorruptedCacheException

        lines = []
        try:
            info = scan_cache_dir(self.cache_dir)
        except (CacheNotFound, CorruptedCacheException, OSError) as e:
            return [f"  Hugging Face cache {self.cache_dir}: cannot be read ({e})"]
        for repo in (r for r in info.repos if r.repo_type == "model" and r.repo_id in OFFICIAL_REPOS):
            lines.append(f"  Hugging Face cache (read-only): {repo.repo_id}, {len(repo.revisions)} revision(s), "
                         f"{repo.size_on_disk_str} on disk")
        lines += [f"  Hugging Face cache warning: {w}" for w in info.warnings
                  if any(_repo_dir(self.cache_dir, r).name in str(w) for r in OFFICIAL_REPOS)]
        for name, (path, _) in sorted(self.entries().items()):
            d = cf.detected(path)
            what = d.error or ", ".join(d.kinds) or "no loadable network"
            lines.append(f"    {name} [{what}]")
        return lines
