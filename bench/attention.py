"""Attention alone at the UNets' real 1024² shapes: PyTorch's SDPA (flash kernel) vs models/attention.py.

    .venv/bin/python bench/attention.py [--rounds 6] [--json bench/results/attention_cpu.json]

Shapes: Stage C lite (batch 2 for CFG, 24 heads, 576 image tokens attending to 576 + 85 cond tokens) and
Stage B lite's level 2 (batch 2, 18 heads, 1024 tokens + 4). bf16, random q/k/v with logits of standard
deviation 1 and 6 (flat and peaked attention). Rounds alternate the two kernels (A B, B A, ...); the median
milliseconds per call and each kernel's relative L2 error against a float64 rendering of the formula are
reported, with the machine's 1-minute load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.attention import chunked_bf16_attention  # noqa: E402

SHAPES = {"stage_c_lite": (2, 24, 576, 661, 64), "stage_b_lite_level2": (2, 18, 1024, 1028, 64)}
KERNELS = {"sdpa": F.scaled_dot_product_attention, "chunked": chunked_bf16_attention}


def rel_error(out: torch.Tensor, q, k, v) -> float:
    q, k, v = q.double(), k.double(), v.double()
    w = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    ref = w @ v
    return ((out.double() - ref).norm() / ref.norm()).item()


def timed(fn, *args, calls: int = 5) -> float:
    fn(*args)
    t = time.perf_counter()
    for _ in range(calls):
        fn(*args)
    return (time.perf_counter() - t) / calls * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "load_before": os.getloadavg()[0],
              "cases": {}}
    for name, (b, h, lq, lk, d) in SHAPES.items():
        for std in (1.0, 6.0):
            q = (torch.randn(b, h, lq, d, generator=g) * std).bfloat16()
            k, v = (torch.randn(b, h, lk, d, generator=g).bfloat16() for _ in range(2))
            ms = {kn: [] for kn in KERNELS}
            for r in range(a.rounds):
                order = list(KERNELS) if r % 2 == 0 else list(reversed(KERNELS))
                for kn in order:
                    ms[kn].append(timed(KERNELS[kn], q, k, v))
            case = {kn: {"ms_median": round(statistics.median(t), 2), "ms_rounds": [round(x, 2) for x in t],
                         "rel_error_vs_float64": rel_error(KERNELS[kn](q, k, v), q, k, v)} for kn, t in ms.items()}
            case["ratio_chunked_over_sdpa"] = round(case["chunked"]["ms_median"] / case["sdpa"]["ms_median"], 3)
            result["cases"][f"{name}_logit_std_{std:g}"] = case
            print(name, std, json.dumps(case), flush=True)
    result["load_after"] = os.getloadavg()[0]
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
