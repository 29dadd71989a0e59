"""int8 weights for the Linear and 1×1-conv layers of Stage C and Stage B (issue 16 §3).

A quantised layer keeps its weight as two buffers, ``<name>_int8`` ([out, in] int8, symmetric, per output
channel) and ``<name>_scale`` ([out] float32), so that residency's eviction (``to_empty("meta")``) and
reload (swapping in a fresh module's buffers) work unchanged and ``module_nbytes`` counts the int8 size.
The layer's class is swapped for a subclass whose ``<name>`` property returns a ``QWeight``: the forward
code keeps reading ``lin.weight`` and calling ``F.linear`` (QWeight answers it through the
``__torch_function__`` protocol), ``w[a:b]`` (row slices of the packed q/k/v projection) and
``w.flatten(1)`` (1×1 convs) still mean what they meant.

Modes:
- ``int8_weight``: weight-only. Each call dequantises the weight to the activation dtype
  (bf16(q · scale)) and runs the usual matmul: it halves resident memory, not time. (On this CPU
  ``torch._weight_int8pack_mm`` measured 70 ms vs 43 ms for dequantise + oneDNN at 576×1536×6144.)
- ``int8_dynamic``: fbgemm's ``quantized::linear_dynamic`` (per-tensor asymmetric uint8 activations
  chosen per call, int32 accumulation with VNNI): faster on CPUs with int8 dot products. Only on the CPU
  and only where the CPU has them; elsewhere the model falls back to ``int8_weight`` with a warning.
"""
from __future__ import annotations

import functools
import logging
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .common import linear

log = logging.getLogger(__name__)

QUANT_MODES = ("none", "int8_weight", "int8_dynamic")


def cpu_has_int8_dot() -> bool:
    """True when fbgemm is built in and the CPU has int8 dot products (AVX512-VNNI, AVX-VNNI or AMX-INT8)."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def quantize_symmetric(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [out, in] float -> (q [out, in] int8 in [-127, 127], scale [out] float32); w ≈ q · scale[:, None].

    The scale is max|w_row| / 127 (1 for an all-zero row, so q = 0 there). Works on meta tensors.
    """
    w = w.detach().double()  # float64 so that rounding ties fall where the exact maths puts them
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale.float()


class QWeight:
    """A view of one int8 weight matrix that F.linear accepts (rows may be a slice of the stored buffer)."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, mode: str, cache: dict | None = None) -> None:
        self.q, self.scale, self.mode = q, scale, mode
        self._cache = {} if cache is None else cache  # fbgemm packed weights, per row slice
        self.requires_grad = False
        self.shape = q.shape
        self.device = q.device

    def __getitem__(self, rows: slice) -> "QWeight":
        if not isinstance(rows, slice):
            raise TypeError("a quantised weight can only be sliced by rows (w[a:b])")
        return QWeight(self.q[rows], self.scale[rows], self.mode, self._cache)

    def flatten(self, start_dim: int = 0) -> "QWeight":
        """Stored already [out, in]: flattening a 1×1 conv's kernel is the identity here."""
        if start_dim != 1:
            raise TypeError("a quantised weight is flattened only as a 1×1 conv's kernel (flatten(1))")
        return self

    def dequantize(self, dtype: torch.dtype) -> torch.Tensor:
        """The float weight q · scale, computed in float32 and rounded once to `dtype`."""
        return (self.q.float() * self.scale[:, None]).to(dtype)

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func is not F.linear:
            raise TypeError(f"{getattr(func, '__name__', func)} does not take an int8-quantised weight")
        kwargs = kwargs or {}
        x, weight = args[0], args[1]
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        return weight.linear(x, bias)

    def linear(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """x [..., in] -> [..., out] in x's dtype."""
        if self.mode == "int8_dynamic" and x.device.type == "cpu":
            x2 = x.reshape(-1, x.shape[-1]).float()
            y = torch.ops.quantized.linear_dynamic(x2, self._packed(), False)
            if bias is not None:
                y = y.add_(bias.float())
            return y.to(x.dtype).view(*x.shape[:-1], y.shape[-1])
        return linear(x, self.dequantize(x.dtype), bias)  # oneDNN for bf16 on the CPU

    def _packed(self) -> Any:
        key = (self.q.data_ptr(), self.q.shape[0])
        packed = self._cache.get(key)
        if packed is None:
            zero = torch.zeros(self.q.shape[0], dtype=torch.long)
            with warnings.catch_warnings():  # quantized tensors are deprecated; fbgemm's op still needs one
                warnings.simplefilter("ignore")
                qt = torch._make_per_channel_quantized_tensor(self.q, self.scale.double(), zero, 0)
                packed = torch.ops.quantized.linear_prepack(qt, None)
            self._cache[key] = packed
        return packed


@functools.lru_cache(maxsize=None)
def _quant_class(base: type, name: str) -> type:
    """`base` with `name` served from the int8 buffers (one subclass per base class and weight name)."""

    def get(self: nn.Module) -> QWeight:
        q, scale = self._buffers[name + "_int8"], self._buffers[name + "_scale"]
        cached = self.__dict__.get("_qweight")
        if cached is None or cached.q is not q:  # rebuilt after a reload swapped fresh buffers in
            cached = QWeight(q, scale, self.__dict__["quant_mode"])
            self.__dict__["_qweight"] = cached
        return cached

    def _apply(self: nn.Module, fn: Any, recurse: bool = True) -> nn.Module:
        # The cached view holds the int8 buffers and fbgemm's packed copies: any conversion of the
        # module's tensors (eviction's to_empty("meta"), .to(device)) drops it, or the old tensors
        # would stay alive beside the new ones.
        self.__dict__.pop("_qweight", None)
        return base._apply(self, fn, recurse)

    return type(f"Int8{base.__name__}", (base,), {name: property(get), "_apply": _apply, "__module__": __name__})


def _targets(model: nn.Module) -> list[tuple[nn.Module, str]]:
    out: list[tuple[nn.Module, str]] = []
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            out.append((mod, "weight"))
        elif isinstance(mod, nn.Conv2d) and mod.kernel_size == (1, 1) and mod.groups == 1 \
                and mod.stride == (1, 1) and mod.padding in ((0, 0), "valid"):
            out.append((mod, "weight"))
        elif isinstance(mod, nn.MultiheadAttention) and mod._qkv_same_embed_dim:
            out.append((mod, "in_proj_weight"))
    return out


def effective_mode(mode: str, device: str | torch.device = "cpu") -> str:
    """The mode actually run: int8_dynamic needs a CPU with int8 dot products, else int8_weight (warned)."""
    if mode not in QUANT_MODES:
        raise ValueError(f"quantize must be one of {', '.join(QUANT_MODES)}, not {mode!r}")
    if mode == "int8_dynamic":
        if torch.device(device).type != "cpu":
            log.warning("int8_dynamic runs on the CPU only (fbgemm); using int8_weight on %s", device)
            return "int8_weight"
        if not cpu_has_int8_dot():
            log.warning("int8_dynamic needs int8 dot products (AVX512-VNNI/AVX-VNNI/AMX) and fbgemm; "
                        "this CPU lacks them: using int8_weight")
            return "int8_weight"
    return mode


def quantize_model(model: nn.Module, mode: str, device: str | torch.device = "cpu") -> nn.Module:
    """Swap every Linear / 1×1 Conv2d / packed attention projection of `model` to int8 in place.

    mode: one of QUANT_MODES; "none" returns the model untouched. Works on meta (weightless) models too,
    so a residency skeleton has the same buffers as the loaded model. Returns the model.
    """
    mode = effective_mode(mode, device)
    if mode == "none":
        return model
    for mod, name in _targets(model):
        weight = mod._parameters.pop(name)
        q, scale = quantize_symmetric(weight.reshape(weight.shape[0], -1))
        mod.register_buffer(name + "_int8", q)
        mod.register_buffer(name + "_scale", scale)
        mod.__dict__["quant_mode"] = mode
        mod.__class__ = _quant_class(type(mod), name)
    model.__dict__["quant_mode"] = mode  # what LoRA loading checks (models/lora)
    return model


def int8_bytes_ratio(model_dtype: torch.dtype, mode: str = "int8_weight") -> float:
    """Rough resident-size factor of a quantised model against `model_dtype` (matmul weights are ~all
    of it): one byte a weight, two for int8_dynamic, which also holds fbgemm's packed copy once run."""
    per_weight = 2.0 if mode == "int8_dynamic" else 1.0
    return per_weight / torch.empty((), dtype=model_dtype).element_size()
