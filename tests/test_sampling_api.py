"""sample(): callbacks, cancellation, img2img step counts, dtype plumbing, validation, latent sizes."""
import math

import pytest
import torch

from models.sampling import (SAMPLERS, SCHEDULERS, image_size_from_stage_b, official_steps, sample,
                             stage_b_shape, stage_c_shape)
from models.sampling.schedule import r_from_sigma
from models.sampling.schedulers import make_sigmas
from tests.sampling_helpers import CallLog, toy_eps


class Cancel(Exception):
    pass


def _sample(eps, sampler, **kw):
    args = dict(sampler=sampler, scheduler="simple", steps=6, shift=2.0, seeds=[0], device="cpu",
                dtype=torch.float32)
    args.update(kw)
    return sample(eps, (1, 2, 3, 3), **args)


def test_contract_names():
    assert SAMPLERS[0] == "ddpm"
    assert {"euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde", "lcm"} <= set(SAMPLERS)
    assert SCHEDULERS == ("simple", "karras", "exponential")


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_callback_reports_every_step_with_x0(sampler):
    seen = []
    out = _sample(toy_eps, sampler, callback=lambda i, n, x0: seen.append((i, n, x0.shape)))
    assert [(i, n) for i, n, _ in seen] == [(k, 6) for k in range(1, 7)]
    assert all(s == out.shape for _, _, s in seen)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_cancellation_stops_within_one_step(sampler):
    log = CallLog(toy_eps)

    def callback(i, n, x0):
        if i == 2:
            calls_at_cancel.append(len(log.calls))
            raise Cancel

    calls_at_cancel = []
    with pytest.raises(Cancel):
        _sample(log, sampler, callback=callback)
    assert len(log.calls) == calls_at_cancel[0]  # no network call after the raising callback
    assert len(log.calls) <= 4  # two steps (heun: two calls per step)


def test_k_img2img_is_comfy_semantics():
    init = torch.ones(1, 2, 3, 3)
    log, totals = CallLog(toy_eps), set()
    _sample(log, "euler", steps=10, denoise=0.5, init=init, callback=lambda i, n, x0: totals.add(n))
    assert len(log.calls) == 10 and totals == {10}  # ComfyUI runs `steps` steps ...
    sig0 = float(make_sigmas("simple", 20, 2.0)[-11])  # ... from the tail of a 20-step schedule
    assert float(log.calls[0][1][0]) == pytest.approx(float(r_from_sigma(sig0)), abs=1e-6)
    noise0 = torch.randn((2, 3, 3), generator=torch.Generator().manual_seed(0))
    x_k = 1.0 + noise0 * sig0  # init + noise * sigma_start, seen by the network as x_k / sqrt(1 + sigma^2)
    torch.testing.assert_close(log.calls[0][0][0], x_k / math.sqrt(1 + sig0 ** 2))


def test_official_steps_rule():
    assert official_steps(20, 1.0) == 20
    assert official_steps(20, 0.8) == 16
    assert official_steps(10, 0.05) == 1


def test_network_dtype_and_float32_state():
    seen = []

    def eps(x, r):
        seen.append((x.dtype, r.dtype))
        return toy_eps(x.float(), r).to(x.dtype)

    out = _sample(eps, "dpmpp_2m", dtype=torch.bfloat16)
    assert out.dtype == torch.float32
    assert set(seen) == {(torch.bfloat16, torch.float32)}


@pytest.mark.parametrize("bad,match", [
    (dict(sampler="nope"), "sampler"), (dict(scheduler="nope"), "scheduler"), (dict(steps=0), "steps"),
    (dict(denoise=1.5), "denoise"), (dict(seeds=[1, 2]), "seed"),
    (dict(denoise=0.5, init=torch.zeros(1, 3, 3, 3)), "init"),
])
def test_validation(bad, match):
    kw = dict(sampler="ddpm")
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        _sample(toy_eps, **kw)


def test_latent_sizes():
    assert stage_c_shape(1024, 1024, 2) == (2, 16, 24, 24)
    assert stage_b_shape(1024, 1024, 2) == (2, 4, 256, 256)
    assert stage_c_shape(1536, 1024) == (1, 16, 24, 36)  # (width, height) -> [.., h, w]
    assert stage_b_shape(1000, 777) == (1, 4, 195, 250)
    assert stage_c_shape(1000, 777)[2:] == (math.ceil(777 / 42.67), math.ceil(1000 / 42.67))
    assert image_size_from_stage_b(195, 250) == (1000, 780)
    with pytest.raises(ValueError):
        stage_c_shape(0, 512)
