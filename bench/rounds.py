"""Alternating rounds for side-by-side benches, and the statistics that settle a ratio.

A machine whose speed drifts (thermal, other tenants) biases whichever side runs second, so the sides
alternate: round 0 runs A then B, round 1 B then A (two rounds give A B B A), and so on. Each round's
ratio compares two runs made close together; the median over rounds with its spread is what is
reported. Every round also records the 1-minute load average before and after each side, so a reader
can tell a quiet run from a busy one.
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Callable, Iterable


def order(round_index: int, sides: tuple[str, str] = ("ours", "diffusers")) -> tuple[str, str]:
    """The two sides in the order round `round_index` runs them: even rounds A B, odd rounds B A."""
    return sides if round_index % 2 == 0 else (sides[1], sides[0])


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none, e.g. Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run_rounds(n_rounds: int, run_side: Callable[[str, int], dict],
               sides: tuple[str, str] = ("ours", "diffusers")) -> list[dict]:
    """Run `n_rounds` alternating rounds; returns one dict per round.

    run_side(side, round_index) -> that side's result (a dict of seconds/GiB figures). Each round is
    {"round": i, "order": [first, second], side: result | {"load_before", "load_after", "wall_s"}}.
    """
    out = []
    for i in range(n_rounds):
        record: dict = {"round": i, "order": list(order(i, sides))}
        for name in order(i, sides):
            before, t = load_average(), time.perf_counter()
            result = dict(run_side(name, i))
            result.update(load_before=before, load_after=load_average(), wall_s=time.perf_counter() - t)
            record[name] = result
        out.append(record)
    return out


def spread(values: Iterable[float]) -> dict:
    """{"median", "min", "max", "q1", "q3", "n"} of finite values (quartiles by linear interpolation).

    With one value every figure is that value; with none, the figures are None and n is 0.
    """
    xs = sorted(v for v in values if v is not None and v == v and abs(v) != float("inf"))
    if not xs:
        return {"median": None, "min": None, "max": None, "q1": None, "q3": None, "n": 0}
    if len(xs) == 1:
        q1 = q3 = xs[0]
    else:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "q1": q1, "q3": q3, "n": len(xs)}


def ratio_summary(rounds: list[dict], keys: Iterable[str], a: str = "ours", b: str = "diffusers") -> dict:
    """Per key, the spread of a/b over the rounds (rounds where b's figure is 0 or missing are skipped)."""
    summary = {}
    for key in keys:
        ratios = []
        for r in rounds:
            x, y = r[a].get(key), r[b].get(key)
            if x is not None and y:
                ratios.append(x / y)
        summary[key] = spread(ratios)
    return summary


def load_summary(rounds: list[dict], sides: Iterable[str] = ("ours", "diffusers")) -> dict:
    """The spread of every load average recorded (before and after each side of each round)."""
    loads = [r[s][k] for r in rounds for s in sides if s in r for k in ("load_before", "load_after")]
    return spread(loads)


def format_row(key: str, s: dict) -> str:
    """One report line: median ratio with min–max and interquartile range."""
    if not s["n"]:
        return f"{key:14}{'n/a':>8}"
    return (f"{key:14}{s['median']:>8.3f}   min {s['min']:.3f} max {s['max']:.3f}   "
            f"IQR {s['q1']:.3f}–{s['q3']:.3f}   n={s['n']}")
