"""Files between the server and a remote worker: the job's input files out, its outputs back.

The server stays the only writer of output/ and temp/: a worker's file arrives as bytes and is
written here under the name the worker gave it, or under the next free counter when another
worker already wrote that name (two workers both count from their own ``_00001_``). The ui a
client sees names the file as written here.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

from engine.remote import file_refs

COUNTER = re.compile(r"^(?P<stem>.*)_(?P<n>\d{5,})_(?P<ext>\.[^.]+)$")
INPUT_TAG = re.compile(r"\s*\[(input|output|temp)\]$")


def collect_inputs(input_dir: Path, prompt: dict, limit: int) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every input-folder file a literal string input names
    (LoadImage's ``image``, a mask's ``clipspace/...``), at most `limit` bytes in all.

    Raises ValueError naming the file when the job's inputs exceed `limit`."""
    root = input_dir.resolve()
    files: dict[str, bytes] = {}
    total = 0
    for node in prompt.values():
        for value in (node.get("inputs") or {}).values():
            if not isinstance(value, str) or not value or len(value) > 4096:
                continue
            rel = INPUT_TAG.sub("", value)
            try:
                path = (root / rel).resolve()
                if not path.is_relative_to(root) or not path.is_file():
                    continue
            except (OSError, ValueError):
                continue
            key = path.relative_to(root).as_posix()
            if key in files:
                continue
            total += path.stat().st_size
            if total > limit:
                raise ValueError(f"input file {key} makes the job's inputs larger than "
                                 f"{limit} bytes, the most shipped to a worker")
            files[key] = path.read_bytes()
    return files


class OutputWriter:
    """Writes a worker's files into the server's folders; remembers each worker's names."""

    def __init__(self, roots: dict[str, Path]):
        self.roots = {kind: Path(path).resolve() for kind, path in roots.items()}
        self._names: dict[tuple, tuple] = {}  # (worker, type, subfolder, name) -> written name
        self._lock = threading.Lock()

    def forget(self, worker: str) -> None:
        """A restarted worker starts with an empty cache: its old names mean nothing now."""
        with self._lock:
            self._names = {k: v for k, v in self._names.items() if k[0] != worker}

    def place(self, worker: str, ui: Any, files: dict[tuple, bytes]) -> Any:
        """Write `files` and return `ui` naming the files as written here."""
        if not isinstance(ui, dict):
            return ui
        for key, data in files.items():
            kind, sub, name = key
            written = self._write(kind, sub, name, data)
            with self._lock:
                self._names[(worker, *key)] = (kind, sub, written)
        return self.rename(worker, ui)

    def rename(self, worker: str, ui: Any) -> Any:
        """`ui` with every file the worker sent before named as written here."""
        if not isinstance(ui, dict):
            return ui
        out = {k: [dict(i) if isinstance(i, dict) else i for i in v] if isinstance(v, list) else v
               for k, v in ui.items()}
        for ref in file_refs(out):
            with self._lock:
                known = self._names.get((worker, ref["type"], ref.get("subfolder") or "",
                                         ref["filename"]))
            if known is not None:
                ref["filename"] = known[2]
        return out

    def _write(self, kind: str, sub: str, name: str, data: bytes) -> str:
        """Create the file exclusively (another worker's thread may write the same name now)."""
        root = self.roots[kind]
        folder = (root / sub).resolve()
        if not folder.is_relative_to(root) or "/" in name or name in ("", ".", ".."):
            raise ValueError(f"a worker sent a file outside the {kind} folder: {sub}/{name}")
        folder.mkdir(parents=True, exist_ok=True)
        for candidate in _names(folder, name):
            try:
                fd = os.open(folder / candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return candidate
        raise OSError(f"no free name for {name} in {folder}")


def _names(folder: Path, name: str):
    """`name`, then ComfyUI-style counters after the highest one in `folder` (or name_N.ext)."""
    yield name
    match = COUNTER.match(name)
    if match is None:
        stem, dot, ext = name.rpartition(".")
        stem, ext = (stem, dot + ext) if dot else (name, "")
        for i in range(1, 100000):
            yield f"{stem}_{i}{ext}"
        return
    stem, ext = match["stem"], match["ext"]
    pattern = re.compile(re.escape(stem) + r"_(\d{5,})_" + re.escape(ext) + "$")
    taken = [int(m.group(1)) for p in os.listdir(folder) if (m := pattern.match(p))]
    start = max(taken, default=0) + 1
    for n in range(start, start + 100000):
        yield f"{stem}_{n:05d}_{ext}"
