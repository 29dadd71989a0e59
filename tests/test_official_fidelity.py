"""A 4-step official run of a tiny Stage C against an independent float32 rendering of Stability's GDF loop.

The reference below is written here, op by op, from Stability-AI/StableCascade gdf/*.py (snapshot 7a7d341f);
it shares no code with models/sampling. Mirrored ops:
  * gdf/schedulers.py  CosineSchedule.setup/schedule, BaseSchedule.__call__ (t clamp, shift added as a numpy
    float64 scalar, limits from reset_limits at shift 1 via .tolist());
  * gdf/noise_conditions.py  CosineTNoiseCond.cond + BaseNoiseCond.__call__ clamp [0, 1];
  * gdf/scalers.py  VPScaler.scalers (b = sqrt(1 - sigmoid), no stretched limits);
  * gdf/targets.py  EpsilonTarget.x0;  gdf/samplers.py  DDIMSampler.step with eta = 1 (DDPMSampler);
  * gdf/__init__.py  GDF.sample (float32 linspace grid, logSNR_range[:, None].expand(-1, B), cfg lerp + rho).
The noise is ours (one generator per seed, the documented batch rule), fed to both sides alike.
"""
import math

import numpy as np
import pytest
import torch

from models.sampling import guided_eps, sample
from models.stage_c import STAGE_C_PRESETS, StageC
from tests.networks_helpers import randomize_

TOL = 1e-5


class _Schedule:
    """CosineSchedule(clamp_range=[0.0001, 0.9999]) with force_limits: float32 tensors throughout."""

    def __init__(self):
        self.s = torch.tensor([0.008])
        self.min_var = torch.cos(self.s / (1 + self.s) * torch.pi * 0.5) ** 2
        self.limits = None
        self.limits = self(torch.tensor([1.0, 0.0]), shift=1).tolist()

    def __call__(self, t, shift=1):
        t = t.clamp(0, 1)
        var = torch.cos((self.s + t) / (1 + self.s) * torch.pi * 0.5).clamp(0, 1) ** 2 / self.min_var
        var = var.clamp(0.0001, 0.9999)
        logsnr = (var / (1 - var)).log()
        if shift != 1:
            logsnr += 2 * np.log(1 / shift)
        if self.limits is not None:
            logsnr = logsnr.clamp(*self.limits)
        return logsnr


def _noise_cond(logsnr):
    s = torch.tensor([0.008])
    min_var = torch.cos(s / (1 + s) * torch.pi * 0.5) ** 2
    var = logsnr.sigmoid().clamp(0, 1)
    return ((((var * min_var) ** 0.5).acos() / (torch.pi * 0.5)) * (1 + s) - s).clamp(0, 1)


def _scalers(logsnr, ndim):
    a_squared = logsnr.sigmoid()
    a, b = a_squared.sqrt(), (1 - a_squared).sqrt()
    return a.view(-1, *[1] * (ndim - 1)), b.view(-1, *[1] * (ndim - 1))


def official_loop(model, x, draws, steps, shift, cond, uncond=None, cfg=None, cfg_rho=0.7):
    """GDF.sample(..., timesteps=steps, t_start=1, shift) with DDPMSampler; returns the last x0."""
    r_range = torch.linspace(1.0, 0.0, steps + 1)
    logsnr_range = _Schedule()(r_range, shift=shift)[:, None].expand(-1, x.shape[0])
    x0 = None
    for i in range(steps):
        noise_cond = _noise_cond(logsnr_range[i])
        if cfg is not None:
            both = {k: torch.cat([v, uncond[k]], dim=0) for k, v in cond.items()}
            pred, pred_u = model(torch.cat([x, x], dim=0), noise_cond.repeat(2), **both).chunk(2)
            pred_cfg = torch.lerp(pred_u, pred, cfg)
            std_pos, std_cfg = pred.std(), pred_cfg.std()
            pred = cfg_rho * (pred_cfg * std_pos / (std_cfg + 1e-9)) + pred_cfg * (1 - cfg_rho)
        else:
            pred = model(x, noise_cond, **cond)
        a, b = _scalers(logsnr_range[i], x.dim())
        x0 = (x - pred * b) / a
        a_prev, b_prev = _scalers(logsnr_range[i + 1], x.dim())
        sigma_tau = 1 * (b_prev ** 2 / b ** 2).sqrt() * (1 - a ** 2 / a_prev ** 2).sqrt()
        x = a_prev * x0 + (b_prev ** 2 - sigma_tau ** 2).sqrt() * pred + sigma_tau * draws[i + 1]
    return x0


def float64_r(logsnr: float) -> float:
    """The float64 rendering of the noise condition (the spec formula): the reference r is near."""
    s = 0.008
    v = 1 / (1 + math.exp(-logsnr))
    return math.acos(math.sqrt(v * math.cos(s / (1 + s) * math.pi / 2) ** 2)) / (math.pi / 2) * (1 + s) - s


def _draws(seeds, shape, n):
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    return [torch.stack([torch.randn(shape[1:], generator=g) for g in gens]) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_c():
    torch.manual_seed(0)
    return randomize_(StageC(STAGE_C_PRESETS["tiny"]), seed=3).eval()


def _cond(batch, seed):
    g = torch.Generator().manual_seed(seed)
    return {"clip_text": torch.randn(batch, 77, 32, generator=g), "clip_text_pooled": torch.randn(batch, 1, 32, generator=g)}


def _err(got, want):
    return float((got.double() - want.double()).abs().max() / want.double().abs().max())


@pytest.mark.parametrize("shift", [2.0, 1.0])
@torch.no_grad()
def test_four_step_official_run_reproduces_the_float32_gdf_loop(tiny_c, shift):
    seeds, shape, steps = [7, 8], (2, 16, 6, 6), 4
    cond = _cond(2, 1)
    draws = _draws(seeds, shape, steps + 1)
    want = official_loop(tiny_c, draws[0], draws, steps, shift, cond)
    rs = []

    def eps_fn(x, r):
        rs.append(r.clone())
        return tiny_c(x, r, **cond)

    got = sample(eps_fn, shape, sampler="ddpm", scheduler="simple", steps=steps, shift=shift, seeds=seeds,
                 device="cpu", dtype=torch.float32)
    assert _err(got, want) <= TOL, _err(got, want)
    print(f"shift {shift}: max |ours - official| / max |official| = {_err(got, want):.3g}")
    # r is GDF's float32 value bit for bit, and within 2 float32 ulp of the float64 rendering.
    grid = _Schedule()(torch.linspace(1.0, 0.0, steps + 1), shift=shift)
    for i, r in enumerate(rs):
        assert r.dtype == torch.float32 and torch.equal(r, _noise_cond(grid[i]).expand(2))
        assert abs(float(r[0]) - float64_r(float(grid[i]))) <= 2 * 2.0 ** -24 + 1e-12


@torch.no_grad()
def test_four_step_official_run_with_cfg_and_rescale(tiny_c):
    """Batch 1, cfg 4, rho 0.7 (the official Stage C defaults): the guidance path stays within 1e-5 too."""
    seeds, shape, steps = [11], (1, 16, 6, 6), 4
    cond, uncond = _cond(1, 2), {k: torch.zeros_like(v) for k, v in _cond(1, 2).items()}
    draws = _draws(seeds, shape, steps + 1)
    want = official_loop(tiny_c, draws[0], draws, steps, 2.0, cond, uncond, cfg=4.0)
    eps_fn = guided_eps(lambda x, r, **kw: tiny_c(x, r, **kw), cond, uncond, 4.0, 0.7)
    got = sample(eps_fn, shape, sampler="ddpm", steps=steps, shift=2.0, seeds=seeds, device="cpu",
                 dtype=torch.float32)
    assert _err(got, want) <= TOL, _err(got, want)
