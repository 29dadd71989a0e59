"""Optional `torch.compile` of the sampled networks (Stage C, Stage B), off by default.

The mode comes from the config's `extra["compile"]` (bench/pipeline.py's --compile sets it) or, for the
server and the CLI, from $CASCADE_COMPILE; an unknown mode fails the sampler node naming the choices:

- off: the module itself, exactly as before.
- inductor: torch.compile with the default inductor backend (fused kernels; the first step compiles).
- cudagraphs: inductor with mode "reduce-overhead" (CUDA graphs: one launch per step). CUDA only; on any
  other device it falls back to inductor, with a warning, since CUDA graphs do not exist there.
- eager: dynamo captures the graph but runs it uncompiled (checks that a network traces; the tests use it).

Compiled wrappers are kept on the module per mode, so a resident network compiles once. Each wrapper
times its calls (COMPILE_STATS), so a bench can report the compile time (first call minus a later one)
apart from the per-step time.
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # torch is imported where a module is compiled: the server checks the mode at start-up
    from torch import nn

MODES = ("off", "inductor", "cudagraphs", "eager")
# id(wrapper) -> {"name", "mode", "calls", "first_call_s", "other_calls_s"}; read by bench/pipeline.py.
COMPILE_STATS: dict[int, dict] = {}


def compile_mode(env: Any) -> str:
    """The configured mode; ValueError naming the choices for an unknown one."""
    extra = getattr(getattr(env, "config", None), "extra", None) or {}
    mode = str(extra.get("compile") or os.environ.get("CASCADE_COMPILE") or "off").lower()
    if mode not in MODES:
        raise ValueError(f"compile mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def compile_options(mode: str, device: str) -> tuple[dict, str | None]:
    """torch.compile keyword arguments for `mode` on `device`, and a warning when the mode falls back."""
    if mode == "eager":
        return {"backend": "eager"}, None
    if mode == "cudagraphs":
        if str(device).startswith("cuda"):
            return {"backend": "inductor", "mode": "reduce-overhead"}, None
        return {"backend": "inductor"}, f"compile mode cudagraphs needs a CUDA device, not {device}: using inductor"
    return {"backend": "inductor"}, None


def compiled(env: Any, module: nn.Module, warn: Callable[[str], None] | None = None) -> Callable:
    """`module` itself when compile is off, else its compiled wrapper (built once per module and mode)."""
    mode = compile_mode(env)
    if mode == "off":
        return module
    cache = module.__dict__.setdefault("_cascade_compiled", {})
    if mode in cache:
        return cache[mode]
    device = next((str(p.device) for p in module.parameters()), "cpu")
    options, warning = compile_options(mode, device)
    if warning and warn:
        warn(warning)
    import torch

    inner = torch.compile(module, dynamic=False, **options)
    stats = {"name": type(module).__name__, "mode": mode, "calls": 0, "first_call_s": 0.0, "other_calls_s": 0.0}

    def run(*args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            dt = time.perf_counter() - t
            stats["first_call_s" if stats["calls"] == 0 else "other_calls_s"] += dt
            stats["calls"] += 1
    COMPILE_STATS[id(run)] = stats
    cache[mode] = run
    return run


def compile_seconds(stats: dict) -> float | None:
    """Compile time estimated from a wrapper's stats: its first call minus the mean of the others."""
    if stats["calls"] < 2:
        return None
    return max(0.0, stats["first_call_s"] - stats["other_calls_s"] / (stats["calls"] - 1))
