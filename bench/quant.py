"""int8 vs bf16 vs fp32 for Stage C and Stage B (models/quant.py): speed, memory and output error.

Every mode runs the same random weights (one fp32 master; bf16 is it rounded; int8 is the bf16 copy
quantised, as the loader does) on the same inputs, through the official sampler with the official
settings (C: cfg 4, shift 2; B: cfg 1.1, shift 1). Stage B always starts from the fp32 Stage C latent, so
each stage's error is its own; the image is Stage A (fp32) of each mode's Stage B latent. Per step it
records the relative L2 of the x0 prediction against the fp32 and bf16 runs (how the error grows), and the
step's seconds; one network call on identical inputs gives the raw per-call error (eps_rel_l2_*). Memory: resident weight bytes (exact) and the process RSS growth when the mode's copy is
built. os.getloadavg is written before and after every run: compare figures only at similar load.

    .venv/bin/python bench/quant.py                       # lead's full run: lite, 1024², 20 + 10 steps
    .venv/bin/python bench/quant.py --preset tiny --size 256 --steps-c 3 --steps-b 2   # quick check
Writes bench/results/quant_<preset>_<size>.json (or --out).
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import _random_module  # noqa: E402
from models.quant import cpu_has_int8_dot, quantize_model  # noqa: E402
from models.sampling.latents import stage_b_shape, stage_c_shape  # noqa: E402
from models.sampling.run import sample  # noqa: E402
from runtime.residency import module_nbytes  # noqa: E402

MODES = ("fp32", "bf16", "int8_weight", "int8_dynamic")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def variant(master: torch.nn.Module, mode: str) -> torch.nn.Module:
    """The model a loader would give for `mode`: fp32 as is, else bf16 (then int8 of the bf16 weights)."""
    if mode == "fp32":
        return master
    net = copy.deepcopy(master).to(torch.bfloat16)
    return quantize_model(net, mode) if mode.startswith("int8") else net


def run_stage(net, eps, shape, steps, shift, seed, dtype) -> tuple[torch.Tensor, list, list]:
    """Sample; return (final x0 float32, per-step x0 list, per-step seconds)."""
    x0s, times, last = [], [], [time.perf_counter()]

    def cb(i, total, x0):
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now
        x0s.append(x0.detach().float().clone())

    with torch.inference_mode():
        out = sample(lambda x, r: eps(net, x, r), shape, steps=steps, shift=shift, seeds=[seed],
                     device="cpu", dtype=dtype, callback=cb)
    return out, x0s, times


def cfg_eps(cfg: float, cond: tuple, uncond: tuple, call):
    """Classifier-free guidance with both halves in one batch of 2 (as our samplers do)."""
    both = tuple(torch.cat([c, u]) for c, u in zip(cond, uncond))

    def eps(net, x, r):
        dt = next(p.dtype for p in net.parameters() if p.is_floating_point())
        e = call(net, torch.cat([x, x]), torch.cat([r, r]), *(t.to(dt) for t in both)).float()
        c, u = e.chunk(2)
        return torch.lerp(u, c, cfg)
    return eps


def bench_stage(kind: str, args, inputs: dict, results: dict) -> dict[str, torch.Tensor]:
    """Run every mode of one stage; fill results[kind]; return each mode's final latent."""
    master = _random_module(kind, args.preset, torch.float32, seed=1 if kind == "stage_c" else 2).eval()
    master.requires_grad_(False)
    g = torch.Generator().manual_seed(3)
    if kind == "stage_c":
        c = master.config
        txt = torch.randn(1, 77, c.c_clip_text, generator=g)
        pooled = torch.randn(1, 1, c.c_clip_text_pooled, generator=g)
        img = torch.zeros(1, 1, c.c_clip_img)
        eps = cfg_eps(4.0, (txt, pooled, img), (torch.zeros_like(txt), torch.zeros_like(pooled), img),
                      lambda n, x, r, t, p, i: n(x, r, t, p, i))
        shape, steps, shift = stage_c_shape(args.size, args.size), args.steps_c, 2.0
    else:
        effnet = inputs["stage_c_latent"]
        pooled = torch.randn(1, 1, master.config.c_clip, generator=g)
        eps = cfg_eps(1.1, (effnet, pooled), (torch.zeros_like(effnet), torch.zeros_like(pooled)),
                      lambda n, x, r, e, p: n(x, r, e, p))
        shape, steps, shift = stage_b_shape(args.size, args.size), args.steps_b, 1.0
    finals, traj, out, eps_out = {}, {}, {}, {}
    probe = torch.randn(shape, generator=g)  # one network call on identical inputs: the raw per-call error
    probe_r = torch.full((1,), 0.5)
    for mode in args.modes:
        gc.collect()
        before = rss_bytes()
        net = variant(master, mode)
        row = {"weight_bytes": module_nbytes(net), "rss_growth_bytes": rss_bytes() - before,
               "load_before": os.getloadavg()}
        dtype = torch.float32 if mode == "fp32" else torch.bfloat16
        with torch.inference_mode():
            eps_out[mode] = eps(net, probe.to(dtype), probe_r)
        final, x0s, times = run_stage(net, eps, shape, steps, shift, 7, dtype)
        row.update(load_after=os.getloadavg(), step_seconds=times, rss_after_bytes=rss_bytes(),
                   median_step_s=sorted(times)[len(times) // 2])
        finals[mode], traj[mode], out[mode] = final, x0s, row
        if net is not master:
            del net
    for mode, row in out.items():
        for ref in ("fp32", "bf16"):
            if ref in traj and mode != ref:
                row[f"rel_l2_vs_{ref}_per_step"] = [rel_l2(a, b) for a, b in zip(traj[mode], traj[ref])]
                row[f"rel_l2_vs_{ref}"] = rel_l2(finals[mode], finals[ref])
                row[f"eps_rel_l2_vs_{ref}"] = rel_l2(eps_out[mode], eps_out[ref])
        if "bf16" in out and mode != "bf16":
            row["step_ratio_vs_bf16"] = row["median_step_s"] / out["bf16"]["median_step_s"]
    results[kind] = {"shape": list(shape), "steps": steps, "modes": out}
    del master
    gc.collect()
    return finals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="lite", choices=("tiny", "lite", "full"))
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels")
    ap.add_argument("--steps-c", type=int, default=20)
    ap.add_argument("--steps-b", type=int, default=10)
    ap.add_argument("--modes", default=",".join(MODES), help="comma list of " + ", ".join(MODES))
    ap.add_argument("--stage-a", default="full", choices=("full", "tiny", "none"), help="decoder for the image")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    if bad := [m for m in args.modes if m not in MODES]:
        ap.error(f"unknown mode(s) {bad}; choose from {MODES}")
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict = {"argv": sys.argv[1:], "preset": args.preset, "size": args.size, "machine": {
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "int8_dot": cpu_has_int8_dot(), "load_start": os.getloadavg()}}
    c_finals = bench_stage("stage_c", args, {}, results)
    ref_c = c_finals.get("fp32", next(iter(c_finals.values())))
    b_finals = bench_stage("stage_b", args, {"stage_c_latent": ref_c}, results)
    if args.stage_a != "none":
        stage_a = _random_module("stage_a", args.stage_a, torch.float32, seed=4).eval().requires_grad_(False)
        with torch.inference_mode():
            images = {m: stage_a.decode(z) for m, z in b_finals.items()}
        results["image"] = {m: {f"rel_l2_vs_{ref}": rel_l2(img, images[ref]) for ref in ("fp32", "bf16")
                                if ref in images and ref != m} for m, img in images.items()}
    results["machine"].update(load_end=os.getloadavg(),
                              peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    out = args.out or ROOT / "bench" / "results" / f"quant_{args.preset}_{args.size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    for kind in ("stage_c", "stage_b"):
        for mode, row in results[kind]["modes"].items():
            print(f"{kind} {mode:13s} step {row['median_step_s']:.3f}s  weights {row['weight_bytes'] / 2**20:8.1f} MiB"
                  f"  vs fp32 {row.get('rel_l2_vs_fp32', 0):.2e}  vs bf16 {row.get('rel_l2_vs_bf16', 0):.2e}"
                  f"  (one call: {row.get('eps_rel_l2_vs_fp32', 0):.2e} / {row.get('eps_rel_l2_vs_bf16', 0):.2e})")
    for mode, row in results.get("image", {}).items():
        print(f"image   {mode:13s} " + "  ".join(f"{k} {v:.2e}" for k, v in row.items()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
