"""KSampler's noise stream, sigmas, step window and guidance against ComfyUI's formulas (float64 / by hand)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from models.sampling import ComfyStepNoise, comfy_initial_noise
from models.sampling.schedule import comfy_sigma_table
from nodes.comfy import types as C
from nodes.comfy.sample_conds import ComfyDenoiser, clip_img_of, preds_of
from nodes.comfy.sampling import SAMPLER_NAMES, SCHEDULER_NAMES, KSampler, comfy_sigmas, slice_sigmas
from tests.comfy_sampling_helpers import S, sigma64, simple64, table64, timestep64

SCHEDULES = Path(__file__).resolve().parent / "data" / "schedules.json"  # the shared reference, copied


# -- noise ----------------------------------------------------------------------------------------------
def test_starting_noise_is_one_draw_of_the_whole_batch():
    shape = (3, 16, 5, 4)
    expected = torch.randn(shape, generator=torch.Generator().manual_seed(42))
    assert torch.equal(comfy_initial_noise(shape, 42), expected)
    # Item 1 of the batch is NOT a batch-1 run with another seed: it continues the same stream.
    assert not torch.equal(comfy_initial_noise(shape, 42)[1], comfy_initial_noise(shape[1:], 43))


def test_batch_index_takes_the_indexed_single_draws():
    shape = (2, 4, 3, 3)
    g = torch.Generator().manual_seed(5)
    draws = [torch.randn((1, 4, 3, 3), generator=g) for _ in range(4)]
    out = comfy_initial_noise(shape, 5, batch_index=[3, 1])
    assert torch.equal(out, torch.cat([draws[3], draws[1]]))


def test_step_noise_is_seed_plus_one_on_cpu_whole_batch_per_draw():
    shape = (2, 4, 3, 3)
    g = torch.Generator().manual_seed(11)
    stream = ComfyStepNoise(10, shape, "cpu")
    assert torch.equal(stream(), torch.randn(shape, generator=g))
    assert torch.equal(stream(), torch.randn(shape, generator=g))


# -- sigmas ---------------------------------------------------------------------------------------------
def _comfy_scalar_f32(t: float, shift: float) -> float:
    """ComfyUI's per-entry table loop as written there: 0-dim float32 tensors, Python t."""
    s = torch.tensor(S)
    a = torch.cos((t + s) / (1 + s) * torch.pi * 0.5) ** 2 / torch.cos(s / (1 + s) * torch.pi * 0.5) ** 2
    if shift != 1.0:
        lo = (a / (1 - a)).log() + 2 * torch.log(1.0 / torch.tensor(shift))
        a = lo.sigmoid()
    a = a.clamp(0.0001, 0.9999)
    return float(((1 - a) / a) ** 0.5)


@pytest.mark.parametrize("shift", [1.0, 2.0])
def test_float32_table_is_comfyuis_and_close_to_the_float64_formula(shift):
    table = comfy_sigma_table(shift, torch.float32)
    for k in (0, 1, 499, 5000, 9998, 9999):
        expected = _comfy_scalar_f32((k + 1) / 10000, shift)
        assert math.isclose(float(table[k]), expected, rel_tol=3e-7), k
    ref = table64(shift)
    rel = ((table - ref) / ref).abs()
    assert float(rel[500:].max()) < 3e-5  # float32 cancellation only matters next to t = 0
    assert float(rel.max()) < 3e-3


def test_simple_sigmas_match_float64_and_the_shared_reference():
    ours = comfy_sigmas(2.0, "simple", 20, 1.0)
    ref = torch.tensor(simple64(2.0, 20), dtype=torch.float64)
    assert torch.allclose(ours, ref, rtol=1e-5, atol=0)
    shared = json.loads(SCHEDULES.read_text())["comfy_simple_sigmas_stage_c_20steps_shift2"]
    assert torch.allclose(ours, torch.tensor(shared, dtype=torch.float64), rtol=1e-5, atol=0)


def test_denoise_keeps_the_tail_of_a_longer_schedule_and_the_0_9999_rule():
    assert torch.allclose(comfy_sigmas(1.0, "simple", 4, 0.5), torch.tensor(simple64(1.0, 8)[-5:], dtype=torch.float64), rtol=1e-5)
    assert torch.equal(comfy_sigmas(1.0, "simple", 4, 0.99995), comfy_sigmas(1.0, "simple", 4, 1.0))
    assert len(comfy_sigmas(1.0, "simple", 4, 0.0)) == 0


def test_normal_sgm_and_ddim_uniform_follow_comfyuis_definitions():
    shift, steps = 2.0, 5
    table = table64(shift)
    start, end = timestep64(float(table[-1])), timestep64(float(table[0]))
    normal = sigma64(torch.linspace(start, end, steps, dtype=torch.float64), shift).tolist() + [0.0]
    sgm = sigma64(torch.linspace(start, end, steps + 1, dtype=torch.float64)[:-1], shift).tolist() + [0.0]
    ddim = [float(table[x]) for x in range(1, 10000, 10000 // steps)][::-1] + [0.0]
    for name, ref in (("normal", normal), ("sgm_uniform", sgm), ("ddim_uniform", ddim)):
        ours, ref = comfy_sigmas(shift, name, steps, 1.0), torch.tensor(ref, dtype=torch.float64)
        assert torch.allclose(ours[:-2], ref[:-2], rtol=2e-5, atol=0), name
        # the lowest entry sits next to t = 0, where ComfyUI's float32 table loses digits (see above)
        assert torch.allclose(ours, ref, rtol=3e-3, atol=0), name


def test_step_window_slicing_as_ksampler_sample():
    sig = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.0], dtype=torch.float64)
    assert slice_sigmas(sig, 2, 10000, True).tolist() == [3.0, 2.0, 1.0, 0.0]
    assert slice_sigmas(sig, 0, 3, True).tolist() == [5.0, 4.0, 3.0, 0.0]
    assert slice_sigmas(sig, 0, 3, False).tolist() == [5.0, 4.0, 3.0, 2.0]
    assert slice_sigmas(sig, 1, 3, False).tolist() == [4.0, 3.0, 2.0]
    assert slice_sigmas(sig, 5, 10000, True) is None and slice_sigmas(sig, 3, 3, True) is None
    assert sig.tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]  # never edited in place


# -- guidance -------------------------------------------------------------------------------------------
class _Linear:
    """eps = x_in * a + mean(clip_text) + pooled: a network whose predictions are easy to write by hand."""

    def __call__(self, x, r, clip_text, clip_text_pooled, clip_img, cnet=None):
        extra = 0.0 if cnet is None else cnet[0]
        return x * 0.5 + clip_text.mean(dim=(1, 2)).view(-1, 1, 1, 1) + clip_text_pooled[:, :1, None, None] + extra


def _entry(v: float, **extras):
    return [torch.full((1, 3, 2), v), {"pooled_output": torch.full((1, 2), v), **extras}]


def test_combined_entries_average_and_cfg_is_plain():
    x = torch.randn(2, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    sigma = 3.0
    pos = preds_of([_entry(1.0), _entry(3.0)], "stage_c", (2, 2), 2.0)
    neg = preds_of([_entry(-1.0)], "stage_c", (2, 2), 2.0)
    den = ComfyDenoiser(_Linear(), pos, neg, 4.0, 2.0, torch.device("cpu"))
    x_in = x / math.sqrt(sigma ** 2 + 1)
    d = lambda v: x - sigma * (x_in * 0.5 + 2 * v)  # noqa: E731  (mean + pooled = 2v)
    cond = (d(1.0) + d(3.0)) / 2
    expected = d(-1.0) + (cond - d(-1.0)) * 4.0
    assert torch.allclose(den(x, sigma), expected, atol=1e-5)
    only_cond = ComfyDenoiser(_Linear(), pos, [], 1.0, 2.0, torch.device("cpu"))
    assert torch.allclose(only_cond(x, sigma), cond, atol=1e-5)  # cfg 1: the negative never runs


def test_unclip_embeds_times_strength_stacked_else_zeros():
    e1, e2 = torch.randn(1, 768), torch.randn(2, 768)
    unclip = [{"clip_vision_output": C.ClipVisionOutput(e1), "strength": 0.5, "noise_augmentation": 0.0},
              {"clip_vision_output": C.ClipVisionOutput(e2), "strength": 2.0, "noise_augmentation": 0.0}]
    out = clip_img_of({"unclip_conditioning": unclip})
    assert out.shape == (1, 3, 768)
    assert torch.allclose(out[0], torch.cat([e1 * 0.5, e2 * 2.0]))
    assert torch.equal(clip_img_of({}), torch.zeros(1, 1, 768))


def test_control_adapter_is_called_with_shape_sigma_and_percent_to_sigma():
    calls = []

    class Control:
        def stage_c_inputs(self, x_shape, sigma, percent_to_sigma):
            calls.append((x_shape, sigma, percent_to_sigma(0.0), percent_to_sigma(1.0)))
            return [torch.full((1,), 10.0)]

    x = torch.zeros(1, 1, 2, 2)
    pos = preds_of([_entry(0.0, control=Control())], "stage_c", (2, 2), 2.0)
    den = ComfyDenoiser(_Linear(), pos, [], 1.0, 2.0, torch.device("cpu"))
    out = den(x, 2.0)
    assert calls == [((1, 1, 2, 2), 2.0, 999999999.9, 0.0)]
    assert torch.allclose(out, torch.full_like(x, -20.0))  # x - sigma * (0 + 10)


def test_combos_offer_comfyui_names_and_defaults():
    spec = {i.name: i for i in KSampler.INPUTS}
    assert [i.name for i in KSampler.INPUTS] == ["model", "seed", "steps", "cfg", "sampler_name", "scheduler",
                                                "positive", "negative", "latent_image", "denoise"]
    assert (spec["steps"].default, spec["cfg"].default, spec["denoise"].default) == (20, 8.0, 1.0)
    assert "euler_ancestral" in SAMPLER_NAMES and "ddpm" not in SAMPLER_NAMES
    assert SCHEDULER_NAMES[:1] == ("normal",) and "simple" in SCHEDULER_NAMES
