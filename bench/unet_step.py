"""Seconds per denoising step: our Stage C lite / Stage B lite vs diffusers' StableCascadeUNet.

Both models share the same random bf16 weights (diffusers gets views of ours, so memory holds one copy),
run side by side in one process on inputs of the real size for a 1024x1024 image, steps alternating
between the two implementations so that load from other processes hits both alike.

    .venv/bin/python bench/unet_step.py [--which c,b] [--steps 3] [--batch-b 1] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.convert_keys import unet_config_to_diffusers, unet_original_to_diffusers  # noqa: E402
from models.stage_b import STAGE_B_PRESETS, StageB  # noqa: E402
from models.stage_c import STAGE_C_PRESETS, StageC  # noqa: E402


def build_pair(which: str, dtype: torch.dtype, device: str):
    """Our model with random weights, and diffusers' model holding views of the same tensors."""
    from diffusers.models.unets.unet_stable_cascade import StableCascadeUNet

    cls, cfg = (StageC, STAGE_C_PRESETS["lite"]) if which == "c" else (StageB, STAGE_B_PRESETS["lite"])
    with torch.device("meta"):
        ours = cls(cfg)
        theirs = StableCascadeUNet(**unet_config_to_diffusers(cfg))
    ours = ours.to_empty(device=device).to(dtype).eval()
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for p in ours.parameters():
            bound = (3.0 / (p[0].numel() if p.dim() >= 2 else 1)) ** 0.5 if p.dim() >= 2 else 0.1
            p.uniform_(-bound, bound, generator=gen)
    theirs.load_state_dict(unet_original_to_diffusers(ours.state_dict()), strict=True, assign=True)
    return ours, theirs.eval()


def make_inputs(which: str, batch: int, dtype: torch.dtype, device: str):
    """Call-ables running one step of each model on fixed random inputs."""
    g = torch.Generator(device="cpu").manual_seed(1)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    # r = 0: diffusers computes r * 10000 in the weights' dtype, so only r = 0 embeds identically in bf16.
    r = torch.zeros(batch, device=device)
    if which == "c":
        x, txt, pooled, img = rnd(batch, 16, 24, 24), rnd(batch, 77, 1280), rnd(batch, 1, 1280), rnd(batch, 1, 768)
        return (lambda m: m(x, r, txt, pooled, img),
                lambda m: m(x, r.to(dtype), clip_text_pooled=pooled, clip_text=txt, clip_img=img).sample)
    x, effnet, pooled = rnd(batch, 4, 256, 256), rnd(batch, 16, 24, 24), rnd(batch, 1, 1280)
    return (lambda m: m(x, r, effnet, pooled),
            lambda m: m(x, r.to(dtype), clip_text_pooled=pooled, effnet=effnet).sample)


def count_flops(which: str, batch: int, dtype: torch.dtype) -> float:
    """FLOPs of one forward, counted on the meta device (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    cls, cfg = (StageC, STAGE_C_PRESETS["lite"]) if which == "c" else (StageB, STAGE_B_PRESETS["lite"])
    with torch.device("meta"):
        model = cls(cfg).to(dtype)
        call, _ = make_inputs_meta(which, batch, dtype)
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            call(model)
    return float(fc.get_total_flops())


def make_inputs_meta(which: str, batch: int, dtype: torch.dtype):
    """Same shapes as make_inputs, on the meta device."""
    r = torch.zeros(batch)
    if which == "c":
        args = (torch.empty(batch, 16, 24, 24, dtype=dtype), r, torch.empty(batch, 77, 1280, dtype=dtype),
                torch.empty(batch, 1, 1280, dtype=dtype), torch.empty(batch, 1, 768, dtype=dtype))
    else:
        args = (torch.empty(batch, 4, 256, 256, dtype=dtype), r, torch.empty(batch, 16, 24, 24, dtype=dtype),
                torch.empty(batch, 1, 1280, dtype=dtype))
    return (lambda m: m(*args)), None


def matmul_rate(dtype: torch.dtype, device: str) -> float:
    """Measured GFLOP/s of a large bf16 matmul (the machine's practical ceiling)."""
    m, k, n = (2048, 1536, 6144) if device == "cpu" else (8192, 8192, 8192)
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    sync(device)
    reps, t = 5, time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * m * k * n * reps / (time.perf_counter() - t) / 1e9


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class PeakMemory:
    """Peak memory while a block runs: CUDA allocator peak, or the process peak RSS on Linux CPU."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
            except OSError:
                pass  # then the peak is the process peak so far
            self.start = _status_gib("VmRSS")
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            self.peak = torch.cuda.max_memory_allocated() / 2 ** 30
        else:
            self.peak = _status_gib("VmHWM")
            self.extra = self.peak - self.start


def _status_gib(field: str) -> float:
    status = Path("/proc/self/status").read_text().split("\n")
    return next(int(s.split()[1]) for s in status if s.startswith(field)) / 2 ** 20


def bench(which: str, batch: int, steps: int, dtype: torch.dtype, device: str, peak_rate: float) -> dict:
    """Alternate ours/diffusers steps; report median s/step, peak memory, achieved GFLOP/s."""
    ours, theirs = build_pair(which, dtype, device)
    call_ours, call_theirs = make_inputs(which, batch, dtype, device)
    flops = count_flops(which, batch, dtype)
    times = {"ours": [], "diffusers": []}
    peaks = {}
    with torch.no_grad():
        for name, model, call in (("ours", ours, call_ours), ("diffusers", theirs, call_theirs)):
            with PeakMemory(device) as pm:  # warm-up step, also the memory measurement
                call(model)
                sync(device)
            peaks[name] = (pm.peak, getattr(pm, "extra", None))
        for _ in range(steps):
            for name, model, call in (("ours", ours, call_ours), ("diffusers", theirs, call_theirs)):
                t = time.perf_counter()
                call(model)
                sync(device)
                times[name].append(time.perf_counter() - t)
        diff = (call_ours(ours).float() - call_theirs(theirs).float()).norm() / call_theirs(theirs).float().norm()
    res = {k: statistics.median(v) for k, v in times.items()}
    label = "Stage C lite (16x24x24)" if which == "c" else "Stage B lite (4x256x256)"
    print(f"\n{label}, batch {batch}, {dtype}, {device}; {flops / 1e9:.0f} GFLOP/step; "
          f"bf16 matmul ceiling {peak_rate:.0f} GFLOP/s; rel. diff ours vs diffusers {float(diff):.2e}")
    for name in ("ours", "diffusers"):
        print(f"  {name:9s} {res[name]:7.3f} s/step  (all: {', '.join(f'{t:.3f}' for t in times[name])})  "
              f"{flops / res[name] / 1e9:6.0f} GFLOP/s = {flops / res[name] / 1e9 / peak_rate:5.1%} of ceiling  "
              f"peak {'GPU alloc' if device == 'cuda' else 'RSS'} {peaks[name][0]:.2f} GiB"
              + (f" (+{peaks[name][1]:.2f} during the step)" if peaks[name][1] is not None else ""))
    print(f"  ratio ours/diffusers: {res['ours'] / res['diffusers']:.3f}")
    return res


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark(s)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--which", default="c,b", help="comma list of c (Stage C lite) and b (Stage B lite)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per implementation (after 1 warm-up)")
    ap.add_argument("--batch-c", type=int, default=2, help="Stage C batch (2 = prompt + CFG uncond)")
    ap.add_argument("--batch-b", type=int, default=1, help="Stage B batch (1 = diffusers' default, no CFG)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""))
    peak = matmul_rate(dtype, args.device)
    for which in args.which.split(","):
        bench(which, args.batch_c if which == "c" else args.batch_b, args.steps, dtype, args.device, peak)


if __name__ == "__main__":
    main()
