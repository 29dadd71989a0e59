"""The official "ddpm" sampler against an independent step-by-step evaluation of spec §3.1."""
import math

import pytest
import torch

from models.sampling import sample
from models.sampling.official import sample_ddpm
from models.sampling.schedule import official_logsnrs
from tests.sampling_helpers import CallLog, FixedNoise, toy_eps

S = 0.008
MIN_VAR = math.cos(S / (1 + S) * math.pi / 2) ** 2
L_MAX = math.log(0.9999 / 1e-4)


def spec_logsnr(t: float, shift: float) -> float:
    var = max(math.cos((t + S) / (1 + S) * math.pi / 2), 0.0) ** 2 / MIN_VAR
    var = min(max(var, 1e-4), 0.9999)
    logsnr = math.log(var / (1 - var)) + (2 * math.log(1 / shift) if shift != 1 else 0.0)
    return min(max(logsnr, -L_MAX), L_MAX)


def spec_ab(logsnr: float) -> tuple[float, float]:
    return math.sqrt(1 / (1 + math.exp(-logsnr))), math.sqrt(1 / (1 + math.exp(logsnr)))


def spec_r(logsnr: float) -> float:
    v = 1 / (1 + math.exp(-logsnr))
    return math.acos(math.sqrt(v * MIN_VAR)) / (math.pi / 2) * (1 + S) - S


def spec_run(model, x, noises, steps, shift, t_start=1.0):
    """GDF.sample with DDPMSampler, written straight from the spec formulas (float64)."""
    ts = [t_start - (t_start * i / steps) for i in range(steps + 1)]
    x0 = None
    for i in range(steps):
        l, l_next = spec_logsnr(ts[i], shift), spec_logsnr(ts[i + 1], shift)
        a, b = spec_ab(l)
        a2, b2 = spec_ab(l_next)
        r = torch.full((x.shape[0],), spec_r(l), dtype=torch.float64)
        eps = model(x, r)
        x0 = (x - b * eps) / a
        sig = math.sqrt(b2 ** 2 / b ** 2) * math.sqrt(1 - a ** 2 / a2 ** 2)
        x = a2 * x0 + math.sqrt(b2 ** 2 - sig ** 2) * eps + sig * noises[i]
    return x0


@pytest.mark.parametrize("shift", [2.0, 1.0])
def test_four_steps_equal_spec_formulas(shift):
    g = torch.Generator().manual_seed(0)
    x_init = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    noises = [torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(4)]
    expected = spec_run(toy_eps, x_init, noises, 4, shift)
    seen = []
    got = sample_ddpm(toy_eps, x_init, official_logsnrs(4, shift), generator=FixedNoise(noises),
                      callback=lambda i, n, x0: seen.append((i, n, x0)))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert [(i, n) for i, n, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert torch.equal(seen[-1][2], got)  # the result is the last step's x0, not the final x


def test_sample_api_uses_per_item_seeded_noise_and_spec_loop():
    seeds, shape = [11, 12], (2, 3, 4, 4)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    draws = [torch.stack([torch.randn(shape[1:], generator=g) for g in gens]).double() for _ in range(5)]
    expected = spec_run(toy_eps, draws[0], draws[1:], 4, 2.0)
    got = sample(toy_eps, shape, sampler="ddpm", scheduler="simple", steps=4, shift=2.0,
                 seeds=seeds, device="cpu", dtype=torch.float32)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4)


def test_first_r_is_0_9936_not_t():
    log = CallLog(toy_eps)
    sample(log, (1, 2, 3, 3), steps=3, shift=2.0, seeds=[0], device="cpu", dtype=torch.float32)
    rs = [float(r[0]) for _, r, _ in log.calls]
    assert rs[0] == pytest.approx(0.993583, abs=1e-6)
    assert rs[1] == pytest.approx(spec_r(spec_logsnr(2 / 3, 2.0)), abs=1e-6)


def test_img2img_official_noises_with_shift1_and_runs_scaled_steps():
    init = torch.full((1, 2, 3, 3), 0.5)
    log, totals = CallLog(toy_eps), set()
    sample(log, (1, 2, 3, 3), sampler="ddpm", steps=20, shift=2.0, denoise=0.8, init=init, seeds=[3],
           device="cpu", dtype=torch.float32, callback=lambda i, n, x0: totals.add(n))
    assert len(log.calls) == 16 and totals == {16}
    # r of the first step: shifted logSNR at t = 0.8 (schedules.json img2img table, 0.8975...).
    assert float(log.calls[0][1][0]) == pytest.approx(0.8975109740765482, abs=1e-6)
    # the start x: a, b of the UNSHIFTED schedule at t = 0.8 (the official quirk).
    a1, b1 = spec_ab(spec_logsnr(0.8, 1.0))
    noise0 = torch.randn((2, 3, 3), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(log.calls[0][0][0], a1 * 0.5 + b1 * noise0, rtol=1e-6, atol=1e-6)
    log2 = CallLog(toy_eps)
    sample(log2, (1, 2, 3, 3), steps=10, shift=2.0, denoise=0.33, init=init, seeds=[3],
           device="cpu", dtype=torch.float32)
    assert len(log2.calls) == 3  # int(10 * 0.33)


def test_denoise_zero_returns_init_and_init_required():
    init = torch.randn(2, 2, 3, 3)
    out = sample(toy_eps, (2, 2, 3, 3), steps=5, shift=1.0, denoise=0.0, init=init, seeds=[1, 2],
                 device="cpu", dtype=torch.float32)
    assert torch.equal(out, init)
    with pytest.raises(ValueError, match="init"):
        sample(toy_eps, (1, 2, 3, 3), steps=5, shift=1.0, denoise=0.5, seeds=[1], device="cpu",
               dtype=torch.float32)


def test_ddpm_equals_euler_ancestral_on_the_same_sigmas():
    """GDF's DDPM (DDIM eta=1) step is exactly k-diffusion's ancestral Euler step written in VP space."""
    kw = dict(scheduler="karras", steps=8, shift=2.0, seeds=[5, 6], device="cpu", dtype=torch.float32)
    ddpm = sample(toy_eps, (2, 3, 4, 4), sampler="ddpm", **kw)
    anc = sample(toy_eps, (2, 3, 4, 4), sampler="euler_ancestral", **kw)
    torch.testing.assert_close(ddpm, anc, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("steps,shift", [(20, 2.0), (10, 1.0)])
def test_ddpm_simple_equals_comfy_euler_ancestral_simple(steps, shift):
    """When steps divides 10000 ComfyUI's table lookups land on GDF's grid: same image, same seed."""
    kw = dict(scheduler="simple", steps=steps, shift=shift, seeds=[5], device="cpu", dtype=torch.float32)
    ddpm = sample(toy_eps, (1, 4, 8, 8), sampler="ddpm", **kw)
    anc = sample(toy_eps, (1, 4, 8, 8), sampler="euler_ancestral", **kw)
    torch.testing.assert_close(ddpm, anc, rtol=1e-5, atol=1e-5 * float(ddpm.abs().max()))


def test_ddpm_step_equals_diffusers_wuerstchen_step():
    """Our DDIM-eta-1 update is DDPMWuerstchenScheduler's posterior step (spec §3.3), written independently."""
    from models.sampling.official import ddpm_step

    g = torch.Generator().manual_seed(1)
    x, eps, z = (torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    for t, t_prev in [(1.0, 0.9), (0.55, 0.5), (0.1, 0.05)]:
        ab_t = spec_ab(spec_logsnr(t, 1.0))[0] ** 2
        ab_prev = spec_ab(spec_logsnr(t_prev, 1.0))[0] ** 2
        alpha = ab_t / ab_prev
        mu = (x - (1 - alpha) * eps / math.sqrt(1 - ab_t)) / math.sqrt(alpha)
        diffusers = mu + math.sqrt((1 - alpha) * (1 - ab_prev) / (1 - ab_t)) * z
        a, b = math.sqrt(ab_t), math.sqrt(1 - ab_t)
        a2, b2 = math.sqrt(ab_prev), math.sqrt(1 - ab_prev)
        ours = ddpm_step((x - b * eps) / a, eps, a, b, a2, b2, z)
        torch.testing.assert_close(ours, diffusers, rtol=1e-9, atol=1e-9)
