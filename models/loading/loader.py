"""`load(path, kind)`: build the network on the meta device and assign freshly read tensors into it.

Peak memory stays near one copy of the weights: nothing is initialised, and each tensor is read
(and converted to the target dtype) just before it becomes the parameter, without a second copy.
Every parameter and buffer ends up in storage of its own, 64-byte aligned, whatever the container:
BLAS rounds differently on misaligned data, so outputs would otherwise depend on the file's layout.
"""
from __future__ import annotations

from itertools import chain
from pathlib import Path, PurePosixPath

import torch
from torch import nn

from . import rules
from .errors import LoadError, name_keys
from .networks import KIND_TITLES, build_on_meta, canonical_kind, match_preset, network_spec, shape_problems
from .safetensors_io import TensorInfo
from .scan import Candidate, Scan, scan

DTYPE_NAMES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
               "fp16": torch.float16, "float16": torch.float16, "half": torch.float16, "float": torch.float32}


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """Accept torch dtypes and their usual short names."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPE_NAMES[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise LoadError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16") from None


def load(path: str | Path, kind: str, *, dtype: torch.dtype | str | None = None,
         device: str | torch.device = "cpu") -> nn.Module:
    """Load the `kind` network stored at `path` (any supported format) in eval mode, strictly."""
    kind = canonical_kind(kind)
    wanted = resolve_dtype(dtype)
    s = scan(Path(path), kind)
    cand = _choose(s, kind, wanted)
    if cand.config is None:
        raise LoadError(f"{s.path.name}: cannot load the {KIND_TITLES[kind]} in {cand.where}: "
                        + "; ".join(cand.problems))
    infos = cand.source.infos()
    target = _target_dtype(kind, wanted, infos, s.path.name)
    spec = network_spec(kind)
    model = build_on_meta(spec, cand.config)
    n = len(spec.key_prefix)
    expected = {k[n:]: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = shape_problems(expected, infos)
    if problems:
        raise LoadError(f"{s.path.name}: the {KIND_TITLES[kind]} weights in {cand.where} do not fit the "
                        f"{cand.preset or 'configured'} network: " + "; ".join(problems))
    state = {}
    for key in expected:
        state[spec.key_prefix + key] = _own(_convert(cand.source.get(key), target, device))
    model.load_state_dict(state, strict=True, assign=True)
    del state
    _restore_nonpersistent(model, device)
    left = [name for name, t in chain(model.named_parameters(), model.named_buffers()) if t.is_meta]
    if left:
        raise LoadError(f"internal error: tensors left unloaded on the meta device: {name_keys(left)}")
    return model.eval().requires_grad_(False)


def _convert(t: torch.Tensor, dtype: torch.dtype | None, device) -> torch.Tensor:
    """Cast floating tensors to the target dtype and move to the device; integer buffers keep their dtype.

    Off the CPU the tensor moves first and is cast there: a single `to(device, dtype)` from the CPU
    converts on the CPU (PyTorch's rule for host-device copies), which for an fp32 file loaded as bf16
    costs seconds of one CPU core per GB where the GPU casts at memory speed. Same values either way.
    """
    if dtype is not None and t.is_floating_point() and t.dtype != dtype:
        if t.device.type == "cpu" and torch.device(device).type != "cpu":
            return t.to(device=device).to(dtype)
        return t.to(device=device, dtype=dtype)
    return t.to(device=device)


# Bytes: what PyTorch's CPU allocator gives every new tensor, and a multiple of every SIMD width BLAS uses.
ALIGNMENT = 64


def owns_aligned_storage(t: torch.Tensor) -> bool:
    """True if `t` is contiguous, starts its storage, fills it exactly and is ALIGNMENT-byte aligned."""
    return (t.is_contiguous() and t.storage_offset() == 0 and t.data_ptr() % ALIGNMENT == 0
            and t.untyped_storage().nbytes() == t.nbytes)


def _own(t: torch.Tensor) -> torch.Tensor:
    """`t` itself if it owns aligned storage (what every reader returns), else a fresh copy.

    A view (a slice of a bigger tensor, a transposed or reshaped one) would keep its whole base alive
    and could start at any offset; copying tensor by tensor keeps the peak at one network plus one tensor.
    """
    if owns_aligned_storage(t):
        return t
    fresh = torch.empty(t.shape, dtype=t.dtype, device=t.device)
    return fresh.copy_(t)


def _target_dtype(kind: str, wanted: torch.dtype | None, infos: dict[str, TensorInfo], name: str) -> torch.dtype | None:
    """The dtype to load in: the requested one, else the file's; Stage C is never float16 (spec §4.4)."""
    if kind == "stage_c" and wanted == torch.float16:
        raise LoadError(f"{name}: Stage C cannot run in float16 (its activations overflow to NaN/black images); "
                        "load it as bfloat16 or float32")
    target = wanted or rules.main_dtype(infos)
    if kind == "stage_c" and target == torch.float16:
        return torch.bfloat16  # a float16 Stage C file is upcast to the official inference dtype
    return target


def _choose(s: Scan, kind: str, wanted: torch.dtype | None) -> Candidate:
    """The one candidate of this kind (dtype variants of one model are fine; different models are not)."""
    cands = [c for c in s.candidates if c.kind == kind]
    if not cands:
        raise LoadError(_wrong_kind(s, kind))
    models = {(str(PurePosixPath(c.group.files[0]).parent), c.prefix, c.preset) for c in cands}
    if len(models) > 1:
        listed = "; ".join(f"{c.where} ({c.preset or 'unknown size'})" for c in cands)
        raise LoadError(f"{s.path.name} holds several {KIND_TITLES[kind]} networks ({listed}); "
                        "point at the one you want")

    def score(c: Candidate) -> tuple:
        main = rules.main_dtype(c.source.infos())
        itemsize = main.itemsize if main is not None else 0
        return (main == wanted, itemsize if wanted in (None, torch.float32) else -itemsize)

    return max(cands, key=score)


def _wrong_kind(s: Scan, kind: str) -> str:
    """Say what the file actually is."""
    name = s.path.name
    if s.candidates:
        sizes = [c.preset or match_preset(network_spec(c.kind), c.source.infos()) for c in s.candidates]
        what = ", ".join(sorted({f"{KIND_TITLES[c.kind]} ({size or 'unknown size'})"
                                 for c, size in zip(s.candidates, sizes)}))
        return (f"{name} is not a {KIND_TITLES[kind]} checkpoint: it holds {what}. "
                f"Choose it in the matching loader, or pick a {KIND_TITLES[kind]} file here")
    if s.other:
        return f"{name} is {s.other}, not a Stable Cascade {KIND_TITLES[kind]} checkpoint"
    if s.problems:
        return "; ".join(s.problems)
    return f"{name} is not a Stable Cascade file"


def _restore_nonpersistent(model: nn.Module, device) -> None:
    """Re-create buffers that are not saved in checkpoints (CLIP position ids) after a meta build."""
    for module in model.modules():
        for name in list(getattr(module, "_non_persistent_buffers_set", ())):
            buf = module._buffers.get(name)
            if buf is None or not buf.is_meta:
                continue
            if name == "position_ids":
                module._buffers[name] = torch.arange(buf.shape[-1], device=device).expand(buf.shape).contiguous()
