"""The alternating bench: A B B A order, every round kept with its load, median ratios with their spread."""
from __future__ import annotations

import argparse

import pytest

from bench import pipeline, rounds


def test_order_alternates_so_two_rounds_run_a_b_b_a():
    seq = [s for i in range(2) for s in rounds.order(i)]
    assert seq == ["ours", "diffusers", "diffusers", "ours"]


def test_spread_median_quartiles_and_extremes():
    s = rounds.spread([0.9, 0.7, 0.8, float("nan"), 1.0])
    assert s == {"median": pytest.approx(0.85), "min": 0.7, "max": 1.0, "q1": pytest.approx(0.775),
                 "q3": pytest.approx(0.925), "n": 4}
    assert rounds.spread([2.0])["q1"] == 2.0 and rounds.spread([])["n"] == 0


def _args(**kw):
    base = dict(rounds=3, round_steps_c=4, round_steps_b=2, full_rounds=1, steps_c=20, steps_b=10)
    return argparse.Namespace(**(base | kw))


def test_alternate_runs_rounds_in_turn_and_keeps_every_round():
    calls = []
    # ours is 0.8x diffusers in round 0, 0.6x in round 1, 1.0x in round 2: the median is 0.8.
    factor = {4: [0.8, 0.6, 1.0], 20: [0.75]}

    def fake(args, name, steps_c, steps_b):
        i = sum(1 for c in calls if c[0] == name and c[1] == steps_c)
        calls.append((name, steps_c, steps_b))
        t = 10.0 * (factor[steps_c][i] if name == "ours" else 1.0)
        return {"total": t, "stage_c": t / 2, "load": 1.0, "text": 0.0}

    out = pipeline.alternate(_args(), fake)
    assert [c[0] for c in calls] == ["ours", "diffusers", "diffusers", "ours", "ours", "diffusers",
                                     "ours", "diffusers"]
    assert [c[1:] for c in calls] == [(4, 2)] * 6 + [(20, 10)] * 2
    red = out["reduced"]
    assert len(red["rounds"]) == 3 and red["rounds"][1]["order"] == ["diffusers", "ours"]
    assert red["ratios"]["total"]["median"] == pytest.approx(0.8)
    assert (red["ratios"]["total"]["min"], red["ratios"]["total"]["max"]) == (pytest.approx(0.6), pytest.approx(1.0))
    assert red["ratios"]["text"]["n"] == 0  # 0 s on the diffusers side: no ratio, not a division error
    for r in red["rounds"]:
        for side in ("ours", "diffusers"):
            assert {"load_before", "load_after", "wall_s"} <= set(r[side])
    assert red["load"]["n"] == 12
    assert out["full"]["ratios"]["total"]["median"] == pytest.approx(0.75)


def test_alternate_skips_a_phase_with_no_rounds():
    out = pipeline.alternate(_args(rounds=0, full_rounds=1), lambda a, n, c, b: {"total": 1.0})
    assert out["reduced"] is None and out["full"]["ratios"]["total"]["median"] == 1.0
