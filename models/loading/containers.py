"""Where weights live: a single file, a (diffusers) folder, or a zip of one, seen as groups of shards.

A *group* is one checkpoint: one safetensors file, or the shards of a sharded one, plus the
`config.json` beside it when there is one. Zip members are read in place: stored (uncompressed)
members are read from the archive tensor by tensor, compressed ones are inflated into memory one at a time.
"""
from __future__ import annotations

import json
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from .errors import LoadError
from .safetensors_io import BytesSafetensors, MultiSource, SafetensorsFile, TensorSource

WEIGHT_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
_SHARD = re.compile(r"^(?P<stem>.+)-\d{5}-of-\d{5}\.(safetensors|sft)$")
_VARIANT = re.compile(r"\.(?P<v>bf16|fp16|fp32)(?:-\d{5}-of-\d{5})?\.(safetensors|sft)(\.index\.json)?$")


@dataclass(frozen=True)
class Group:
    """One checkpoint inside a tree: its weight files (relative paths) and optional config.json."""

    files: tuple[str, ...]
    config: str | None
    variant: str | None

    @property
    def label(self) -> str:
        """A short human-readable location ('prior/diffusion_pytorch_model.bf16.safetensors', …)."""
        first = self.files[0]
        if len(self.files) > 1:
            return f"{first} (+{len(self.files) - 1} shards)"
        return first


class Tree(Protocol):
    """A read-only folder-like view: a directory on disk or a zip archive."""

    name: str

    def files(self) -> list[str]: ...

    def read_bytes(self, rel: str) -> bytes: ...

    def open_weights(self, rel: str) -> TensorSource: ...


class DirTree:
    """A directory on disk."""

    def __init__(self, root: Path, only: list[str] | None = None) -> None:
        self.root, self.name = Path(root), Path(root).name
        self._only = only

    def files(self) -> list[str]:
        """Relative posix paths of the files (or just the chosen ones)."""
        if self._only is not None:
            return [n for n in self._only if (self.root / n).is_file()]
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def read_bytes(self, rel: str) -> bytes:
        """Read a small file (config/index json)."""
        return (self.root / rel).read_bytes()

    def open_weights(self, rel: str) -> TensorSource:
        """Open a safetensors file lazily."""
        return SafetensorsFile(self.root / rel)


class ZipTree:
    """A zip archive, read without extracting anything to disk."""

    def __init__(self, path: Path) -> None:
        self.path, self.name = Path(path), Path(path).name
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise LoadError(f"{self.name}: not a readable zip archive ({e}); a truncated download?") from None

    def files(self) -> list[str]:
        """Member names, folders left out."""
        return [i.filename for i in self._zip.infolist() if not i.is_dir()]

    def read_bytes(self, rel: str) -> bytes:
        """Inflate a small member."""
        return self._zip.read(rel)

    def open_weights(self, rel: str) -> TensorSource:
        """Read a stored member in place (tensor by tensor); inflate a compressed one into memory."""
        info = self._zip.getinfo(rel)
        name = f"{self.name}:{rel}"
        if info.flag_bits & 0x1:
            raise LoadError(f"{name}: encrypted zip members are not supported")
        if info.compress_type == zipfile.ZIP_STORED:
            try:
                with open(self.path, "rb") as f:
                    f.seek(info.header_offset)
                    local = f.read(30)
                size = self.path.stat().st_size
            except OSError as e:
                raise LoadError(f"{name}: cannot read the archive ({e.strerror or e})") from None
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise LoadError(f"{name}: corrupt zip (bad local header)")
            n_name, n_extra = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + n_name + n_extra
            length = min(info.file_size, max(size - start, 0))
            return SafetensorsFile(self.path, start, length, name)
        data = bytearray(info.file_size)
        with self._zip.open(info) as f:
            got = f.readinto(data)
        return BytesSafetensors(data[:got] if got != len(data) else data, name)


def _is_weight(name: str) -> bool:
    return name.lower().endswith(WEIGHT_SUFFIXES)


def _variant(name: str) -> str | None:
    m = _VARIANT.search(name)
    return m.group("v") if m else None


def find_groups(tree: Tree) -> list[Group]:
    """All checkpoints in a tree: index-described shard sets, loose shard sets and single files."""
    files = tree.files()
    by_dir: dict[str, list[str]] = {}
    for f in files:
        by_dir.setdefault(str(PurePosixPath(f).parent), []).append(f)
    groups = []
    for d, names in sorted(by_dir.items()):
        config = next((n for n in names if PurePosixPath(n).name == "config.json"), None)
        covered: set[str] = set()
        for idx in (n for n in names if n.endswith(".safetensors.index.json")):
            try:
                weight_map = json.loads(tree.read_bytes(idx))["weight_map"]
            except (KeyError, ValueError, TypeError, RecursionError) as e:
                raise LoadError(f"{tree.name}: unreadable shard index {idx} ({e})") from None
            shards = sorted({str(PurePosixPath(d) / s) if d != "." else s for s in weight_map.values()})
            missing = [s for s in shards if s not in names]
            if missing:
                raise LoadError(f"{tree.name}: shard index {idx} names missing files: {', '.join(missing)}")
            covered.update(shards)
            groups.append(Group(tuple(shards), config, _variant(idx)))
        loose: dict[str, list[str]] = {}
        for n in sorted(n for n in names if _is_weight(n) and n not in covered):
            m = _SHARD.match(PurePosixPath(n).name)
            loose.setdefault(m.group("stem") if m else n, []).append(n)
        for members in loose.values():
            groups.append(Group(tuple(members), config, _variant(members[0])))
    return groups


def open_group(tree: Tree, group: Group) -> TensorSource:
    """One TensorSource over all of a group's shards."""
    sources = [tree.open_weights(f) for f in group.files]
    return sources[0] if len(sources) == 1 else MultiSource(sources, group.label)


def read_config(tree: Tree, group: Group) -> dict | None:
    """The group's config.json as a dict (None when absent)."""
    if group.config is None:
        return None
    try:
        return json.loads(tree.read_bytes(group.config))
    except (ValueError, RecursionError) as e:  # RecursionError: JSON nested too deeply
        raise LoadError(f"{tree.name}: unreadable {group.config} ({e})") from None


def _sniff_pickle(path: Path) -> str | None:
    """Name the format of a file that is not safetensors but a pickle in disguise (None otherwise)."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        return None  # a safetensors header (u64 length, then JSON)
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        return "a PyTorch pickle (torch.save) file"
    return None


def open_tree(path: Path) -> tuple[Tree, list[Group], str]:
    """Open any accepted path; return the tree, its checkpoint groups and the container format name."""
    path = Path(path)
    if not path.exists():
        raise LoadError(f"{path}: no such file or folder")
    low = path.name.lower()
    if path.is_file() and low.endswith(PICKLE_SUFFIXES):
        raise LoadError(f"{path.name}: pickle checkpoints (.ckpt/.pt/.bin) are refused because loading them can run "
                        "arbitrary code; use the .safetensors version of this file")
    if path.is_dir():
        tree = DirTree(path)
        return tree, find_groups(tree), "folder"
    if low.endswith(".zip"):
        tree = ZipTree(path)
        return tree, find_groups(tree), "zip"
    if low.endswith(".safetensors.index.json") or _is_weight(low):
        return _open_in_folder(path)
    raise LoadError(f"{path.name}: not a checkpoint this app reads "
                    "(expected .safetensors, a diffusers folder or a .zip)")


def _open_in_folder(path: Path) -> tuple[Tree, list[Group], str]:
    """A single weights file, shard index or one shard: siblings complete the shard set and config."""
    parent = path.parent
    if _is_weight(path.name) and (sniff := _sniff_pickle(path)):
        raise LoadError(f"{path.name}: this is {sniff} despite its name; it is refused because unpickling can run "
                        "arbitrary code. Use a real .safetensors file")
    names = sorted(p.name for p in parent.iterdir() if p.is_file())
    config = ["config.json"] if "config.json" in names else []
    shard = _SHARD.match(path.name)
    if path.name.endswith(".index.json"):
        members = [path.name, *_index_shards(parent, path.name)]
    elif shard:
        index = next((n for n in names if n.endswith(".safetensors.index.json")
                      and path.name in _index_shards(parent, n)), None)
        members = [index, *_index_shards(parent, index)] if index else [
            n for n in names if (m := _SHARD.match(n)) and m.group("stem") == shard.group("stem")]
    else:
        members = [path.name]
        config = config if path.name.startswith(("diffusion_pytorch_model", "model")) else []
    tree = DirTree(parent, only=members + config)
    return tree, find_groups(tree), "sharded" if len(members) > 1 else "single file"


def _index_shards(folder: Path, index: str) -> list[str]:
    """The shard file names a `*.safetensors.index.json` lists."""
    try:
        return sorted(set(json.loads((folder / index).read_bytes())["weight_map"].values()))
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError) as e:
        raise LoadError(f"{index}: unreadable shard index ({e!r})") from None
