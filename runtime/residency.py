"""Model residency: load each weights file once, keep it across prompts, evict least-recently-used
models when the memory budget is exceeded (so Stage C and Stage B need not be resident together).

An evicted module keeps its identity (handles and the executor's output cache still point at it) but
its tensors move to the ``meta`` device; ``ensure`` reloads them in place before the next use.
"""
from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from models.quant import int8_bytes_ratio, quantize_model
from runtime import allocator
from runtime.stamps import stamp

LoadFn = Callable[[Path, str, torch.dtype, str], nn.Module]  # (path, kind, dtype, device) -> module
SkeletonFn = Callable[[Path, str, torch.dtype], "nn.Module | None"]  # weightless (meta) module, or None


@dataclass
class _Entry:
    key: tuple
    path: Path
    kind: str
    dtype: torch.dtype
    module: nn.Module
    nbytes: int
    resident: bool = True
    tick: int = 0
    pins: int = 0  # > 0 while a node is running it: never evicted then
    quantize: str = "none"  # models/quant.py mode, applied after every read


def module_nbytes(module: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers (meta tensors count as their would-be size)."""
    total = 0
    for t in list(module.parameters()) + list(module.buffers()):
        total += t.numel() * t.element_size()
    return total


def default_budget_bytes(device: str) -> int:
    """Auto budget: on CUDA 80% of the card; on CPU 40% of the RAM. On a 24 GiB machine that is ~9.5 GiB:
    the lite pipeline (~4.5 GiB bf16) stays resident, while the 3.6B Stage C + text encoder (~8 GiB) and
    the 1.5B Stage B (~2.8 GiB) take turns, keeping the process near 12 GiB with activations."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory * 0.8)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 << 30
    return int(total * 0.4)


def _swap_in(module: nn.Module, fresh: nn.Module) -> None:
    """Move every parameter and buffer of `fresh` into `module` (same architecture), keeping identity."""
    pairs = list(fresh.named_parameters(remove_duplicate=False)) + list(fresh.named_buffers(remove_duplicate=False))
    for name, value in pairs:
        owner_name, _, leaf = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        if leaf in owner._parameters:
            owner._parameters[leaf] = value
        else:
            owner._buffers[leaf] = value


class ModelManager:
    """Loads models keyed by (path, file stamp, dtype, kind) and keeps them resident under a byte budget."""

    def __init__(self, load_fn: LoadFn, *, budget_bytes: int | None = None, device: str = "cpu",
                 skeleton_fn: SkeletonFn | None = None) -> None:
        self._load_fn = load_fn
        self._skeleton_fn = skeleton_fn
        self.device = device
        self.budget_bytes = budget_bytes if budget_bytes is not None else default_budget_bytes(device)
        self._entries: dict[tuple, _Entry] = {}
        self._by_module: dict[int, _Entry] = {}
        self._tick = 0
        self._lock = threading.RLock()
        self.loads = 0  # how many times weights were read from disk (tests assert residency with it)
        self.evictions = 0

    @staticmethod
    def key(path: Path, kind: str, dtype: torch.dtype, quantize: str = "none") -> tuple:
        """Residency key: a file changed on disk (a new file stamp, runtime/stamps.py), or quantised
        otherwise, is a different model."""
        path = Path(path).resolve()
        key = (str(path), stamp(path), str(dtype), kind)
        return key if quantize == "none" else key + (quantize,)

    def load(self, path: Path, kind: str, dtype: torch.dtype, *, defer: bool = True,
             lazy: bool = False, quantize: str = "none") -> nn.Module:
        """Return the module for this file, loading it (and evicting others) if needed.

        With `defer`, a new model that would only fit by evicting others is returned weightless (meta)
        and read at its first `ensure`: loader nodes all run before the samplers, so loading Stage B
        eagerly would push Stage C out just before Stage C is sampled. With `lazy`, a new model is
        always returned weightless and read at its first use: an all-in-one file's parts that nothing
        uses (the Stage B checkpoint's text encoder in ComfyUI's examples) are then never read.
        `quantize` (models/quant.QUANT_MODES) stores Linear/1x1 weights as int8 after each read.
        """
        with self._lock:
            key = self.key(path, kind, dtype, quantize)
            entry = self._entries.get(key)
            if entry is None:
                estimate = self._estimate(path, dtype, quantize)
                skeleton = None
                over = self.resident_bytes() + estimate > self.budget_bytes
                if (lazy or (defer and over)) and self._skeleton_fn is not None:
                    skeleton = self._skeleton_fn(Path(path), kind, dtype)
                if skeleton is not None and quantize != "none":
                    skeleton = quantize_model(skeleton, quantize, self.device)  # same buffers as a read
                if skeleton is not None:
                    module, resident = skeleton.eval().requires_grad_(False), False
                else:
                    self._make_room(estimate, keep=None)
                    module, resident = self._read(Path(path), kind, dtype, quantize), True
                entry = _Entry(key, Path(path), kind, dtype, module, module_nbytes(module), resident,
                               quantize=quantize)
                self._entries[key] = entry
                self._by_module[id(module)] = entry
                self._touch(entry)
                return module
            self._touch(entry)
            self._rematerialise(entry)
            return entry.module

    def ensure(self, module: nn.Module) -> nn.Module:
        """Make sure a managed module is resident before use; unknown modules pass through."""
        with self._lock:
            entry = self._by_module.get(id(module))
            if entry is not None:
                self._touch(entry)
                self._rematerialise(entry)
            return module

    @contextlib.contextmanager
    def use(self, module: nn.Module) -> Iterator[nn.Module]:
        """Ensure the module is resident and keep it so (pinned) for the block, e.g. a whole sampling loop."""
        with self._lock:
            self.ensure(module)
            entry = self._by_module.get(id(module))
            if entry is not None:
                entry.pins += 1
        try:
            yield module
        finally:
            if entry is not None:
                with self._lock:
                    entry.pins -= 1

    def unload(self, module: nn.Module) -> bool:
        """Explicitly evict one managed module (its handle stays valid and reloads on next use)."""
        with self._lock:
            entry = self._by_module.get(id(module))
            if entry is None or not entry.resident or entry.pins:
                return False
            self._evict(entry)
            return True

    def resident_bytes(self) -> int:
        """Bytes of all currently resident managed models."""
        return sum(e.nbytes for e in self._entries.values() if e.resident)

    def resident(self) -> list[str]:
        """Resident models as 'kind:file' strings, most recently used last."""
        live = sorted((e for e in self._entries.values() if e.resident), key=lambda e: e.tick)
        return [f"{e.kind}:{e.path.name}" for e in live]

    def unload_all(self) -> int:
        """Evict every resident model (handles stay valid and reload on next use); returns how many."""
        with self._lock:
            live = [e for e in self._entries.values() if e.resident and not e.pins]
            for entry in live:
                self._evict(entry)
            return len(live)

    # -- internals ---------------------------------------------------------------------------
    def _touch(self, entry: _Entry) -> None:
        self._tick += 1
        entry.tick = self._tick

    def _read(self, path: Path, kind: str, dtype: torch.dtype, quantize: str = "none") -> nn.Module:
        with allocator.loading():  # the load's freed copies go back at once (runtime/allocator.py)
            if quantize == "none" or torch.device(self.device).type == "cpu":
                module = quantize_model(self._load_fn(path, kind, dtype, self.device), quantize, self.device)
            else:
                # Quantised in host memory, then moved: the card never holds the unquantised copy (the
                # full Stage C would peak at 6.7 GiB in bf16 before dropping to 3.4 GiB in int8). The
                # scales are float64 maths, so they are the same wherever they are computed.
                module = quantize_model(self._load_fn(path, kind, dtype, "cpu"), quantize,
                                        self.device).to(self.device)
        self.loads += 1
        return module.eval().requires_grad_(False)

    def _rematerialise(self, entry: _Entry) -> None:
        if entry.resident:
            self._make_room(0, keep=entry)  # models unpinned since the last squeeze may be over budget
            return
        self._make_room(entry.nbytes, keep=entry)
        _swap_in(entry.module, self._read(entry.path, entry.kind, entry.dtype, entry.quantize))
        entry.resident = True

    def _make_room(self, incoming: int, keep: _Entry | None) -> None:
        """Evict least-recently-used models until `incoming` more bytes fit the budget."""
        victims = sorted((e for e in self._entries.values() if e.resident and e is not keep and not e.pins),
                         key=lambda e: e.tick)
        for victim in victims:
            if self.resident_bytes() + incoming <= self.budget_bytes:
                break
            self._evict(victim)

    def _evict(self, entry: _Entry) -> None:
        entry.module.to_empty(device="meta")  # frees the storage; shapes stay for the reload
        allocator.release()  # a tuned heap keeps freed memory; an evicted model's goes back to the system
        entry.resident = False
        self.evictions += 1
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    @staticmethod
    def _estimate(path: Path, dtype: torch.dtype, quantize: str = "none") -> int:
        """Rough in-memory size before loading: file size, scaled when bf16/fp16 files become fp32,
        and to one byte a weight when quantised to int8 (two for int8_dynamic: fbgemm packs a copy)."""
        size = Path(path).stat().st_size
        itemsize = torch.empty((), dtype=dtype).element_size()
        size = size * 2 if itemsize == 4 and "bf16" in Path(path).name else size
        return size if quantize == "none" else int(size * int8_bytes_ratio(dtype, quantize))
