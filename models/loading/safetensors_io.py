"""Safetensors readers that never unpickle: files on disk (whole, or a stored zip member) and in-memory blobs.

Every reader validates the header against the data size first, so a truncated download is reported as
such instead of surfacing as an obscure error from deep inside a load.

Every tensor a reader returns lives in fresh storage of its own, allocated by PyTorch (64-byte
aligned) and filled by plain reads, never a view of a memory map. A view would sit at whatever offset
the container happens to give it, and BLAS kernels round differently on misaligned data, so a
network's outputs would depend on the file's layout (single file, diffusers folder, all-in-one) and on
the safetensors version; a mapped parameter would also keep the file mapped for the model's lifetime
(a file replaced or truncated underneath it would crash the process with SIGBUS).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from .errors import LoadError

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
# A header larger than this is not a real checkpoint header (safetensors itself caps at 100 MB).
MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorInfo:
    """What a file says about one tensor, known without reading its data."""

    dtype: torch.dtype
    shape: tuple[int, ...]


class TensorSource(Protocol):
    """A read-only, lazily-read mapping of tensor names to tensors."""

    name: str

    def infos(self) -> dict[str, TensorInfo]: ...

    def get(self, key: str) -> torch.Tensor: ...


@dataclass(frozen=True)
class Header:
    """A parsed safetensors header: per-tensor info and byte ranges relative to the data start."""

    infos: dict[str, TensorInfo]
    ranges: dict[str, tuple[int, int]]
    data_start: int
    metadata: dict[str, str]


def parse_header(head: bytes, total_size: int, name: str) -> Header:
    """Parse and validate a safetensors header given its first bytes and the total byte size."""
    if total_size < 8 or len(head) < 8:
        raise LoadError(f"{name}: not a safetensors file (only {total_size} bytes)")
    (n,) = struct.unpack("<Q", head[:8])
    if n > MAX_HEADER or n < 2:
        raise LoadError(f"{name}: not a safetensors file (bad header length {n}); "
                        "if this is a .ckpt/.pt pickle, convert it to .safetensors first")
    if 8 + n > total_size:
        raise LoadError(f"{name}: truncated file: the header alone needs {8 + n} bytes, file has {total_size}")
    if len(head) < 8 + n:
        raise ValueError("parse_header needs the whole header")
    try:
        raw = json.loads(head[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoadError(f"{name}: unreadable safetensors header ({e})") from None
    except RecursionError:  # a crafted header of deeply nested arrays; json recurses per level
        raise LoadError(f"{name}: unreadable safetensors header (nested too deeply)") from None
    if not isinstance(raw, dict):
        raise LoadError(f"{name}: unreadable safetensors header (not a JSON object)")
    metadata = raw.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise LoadError(f"{name}: unreadable safetensors header (__metadata__ is not an object)")
    infos, ranges, end = {}, {}, 0
    for key, entry in raw.items():
        try:
            dtype = DTYPES[entry["dtype"]]
            shape = tuple(int(s) for s in entry["shape"])
            lo, hi = (int(v) for v in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise LoadError(f"{name}: unreadable safetensors header entry for {key!r}") from None
        numel = 1
        for d in shape:
            numel *= d
        if lo > hi or hi - lo != numel * dtype.itemsize:
            raise LoadError(f"{name}: corrupt safetensors header: {key!r} has {hi - lo} bytes for shape {list(shape)}")
        infos[key], ranges[key] = TensorInfo(dtype, shape), (lo, hi)
        end = max(end, hi)
    data_size = total_size - 8 - n
    if end > data_size:
        raise LoadError(f"{name}: truncated file: tensors need {end} data bytes but only {data_size} are "
                        f"present ({100 * data_size / max(end, 1):.0f}%); download it again")
    return Header(infos, ranges, 8 + n, metadata)


def read_file_header(path: Path, offset: int = 0, length: int | None = None, name: str | None = None) -> Header:
    """Read and validate the header of a safetensors blob on disk: a whole file, or `length` bytes at `offset`.

    Reads only the header bytes. Raises LoadError for an unreadable, truncated or non-safetensors file.
    """
    try:
        size = path.stat().st_size - offset if length is None else length
        with open(path, "rb") as f:
            f.seek(offset)
            head = f.read(min(8, max(size, 0)))
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                if n <= MAX_HEADER:
                    head += f.read(min(n, size - 8))
    except OSError as e:
        raise LoadError(f"{name or path.name}: cannot read the file ({e.strerror or e})") from None
    return parse_header(head, size, name or path.name)


def fresh_bytes(nbytes: int) -> torch.Tensor:
    """A new uint8 tensor of `nbytes` in storage of its own (PyTorch's CPU allocator aligns it to 64 bytes)."""
    return torch.empty(nbytes, dtype=torch.uint8)


class SafetensorsFile:
    """A safetensors blob on disk (a whole file, or a stored zip member at `offset`), read tensor by tensor.

    `get` reads one tensor's bytes with plain file reads into fresh storage (see the module docstring for
    why never a memory map); peak memory during a load is the network plus the tensor being read.
    """

    def __init__(self, path: Path, offset: int = 0, length: int | None = None, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.name
        self._offset = offset
        self.header = read_file_header(self.path, offset, length, self.name)

    def infos(self) -> dict[str, TensorInfo]:
        """Tensor names, dtypes and shapes from the header."""
        return self.header.infos

    def get(self, key: str) -> torch.Tensor:
        """Read one tensor into new, aligned storage; LoadError if the file is unreadable or shrank since opened."""
        info = self.header.infos[key]
        lo, hi = self.header.ranges[key]
        buf = fresh_bytes(hi - lo)
        view = memoryview(buf.numpy())
        got = 0
        try:
            with open(self.path, "rb", buffering=0) as f:
                f.seek(self._offset + self.header.data_start + lo)
                while got < len(view):  # one read() returns at most ~2 GiB on Linux
                    n = f.readinto(view[got:])
                    if not n:
                        break
                    got += n
        except OSError as e:
            raise LoadError(f"{self.name}: could not read tensor {key!r} ({e.strerror or e}); "
                            "the file may be damaged") from None
        if got != len(view):
            raise LoadError(f"{self.name}: tensor {key!r} is cut short ({got} of {len(view)} bytes); "
                            "the file was truncated or replaced while loading")
        return buf.view(info.dtype).reshape(info.shape)


class BytesSafetensors:
    """A safetensors blob held in memory (a compressed zip member, which cannot be read in place)."""

    def __init__(self, data: bytes | bytearray, name: str) -> None:
        self.name = name
        self.header = parse_header(data, len(data), name)
        self._data = memoryview(data)  # only read from: no second copy of the member

    def infos(self) -> dict[str, TensorInfo]:
        """Tensor names, dtypes and shapes from the header."""
        return self.header.infos

    def get(self, key: str) -> torch.Tensor:
        """Copy one tensor out of the in-memory bytes."""
        info = self.header.infos[key]
        lo, hi = self.header.ranges[key]
        buf = fresh_bytes(hi - lo)
        start = self.header.data_start + lo
        buf.numpy()[:] = self._data[start:start + hi - lo]
        return buf.view(info.dtype).reshape(info.shape)


class MultiSource:
    """Several sources seen as one (the shards of a sharded checkpoint); duplicate keys are an error."""

    def __init__(self, sources: list[TensorSource], name: str) -> None:
        self.name = name
        self._owner: dict[str, TensorSource] = {}
        self._infos: dict[str, TensorInfo] = {}
        for src in sources:
            for key, info in src.infos().items():
                if key in self._owner:
                    raise LoadError(f"{name}: tensor {key!r} appears in both {self._owner[key].name} and {src.name}")
                self._owner[key], self._infos[key] = src, info

    def infos(self) -> dict[str, TensorInfo]:
        """Union of the shards' tensor infos."""
        return self._infos

    def get(self, key: str) -> torch.Tensor:
        """Read a tensor from whichever shard holds it."""
        return self._owner[key].get(key)
