"""k-diffusion samplers against closed forms on Gaussian toy data (exact denoiser)."""
import math

import pytest
import torch

from models.sampling import sample
from models.sampling.k_samplers import K_SAMPLERS, EpsDenoiser, ancestral_step
from models.sampling.noise import SeededNoise
from models.sampling.schedule import r_from_sigma
from models.sampling.schedulers import exponential_sigmas, make_sigmas
from tests.sampling_helpers import gaussian_denoiser, gaussian_eps, sampler_law

MU, S = 0.7, 0.5
ODE_SAMPLERS = ("euler", "heun", "dpmpp_2m")


def geometric(n, hi=20.0, lo=0.05):
    return torch.exp(torch.linspace(math.log(hi), math.log(lo), n + 1, dtype=torch.float64))


def ode_solution(x, s_from, s_to):
    """Probability-flow ODE for N(MU, S^2) data: (x - MU) / sqrt(S^2 + sigma^2) is constant."""
    return MU + (x - MU) * math.sqrt(S * S + s_to * s_to) / math.sqrt(S * S + s_from * s_from)


@pytest.mark.parametrize("name", ODE_SAMPLERS)
def test_ode_samplers_exact_for_constant_denoiser(name):
    """Point-mass data (D = c): the ODE solution is linear in sigma; every ODE sampler is exact."""
    c = 0.3
    x = torch.linspace(-2, 2, 5, dtype=torch.float64) * 10
    sig = geometric(6, 10.0, 0.3)
    out = K_SAMPLERS[name](lambda v, sigma: torch.full_like(v, c), x, sig)
    torch.testing.assert_close(out, c + (x - c) * 0.3 / 10.0, rtol=0, atol=1e-12)
    out0 = K_SAMPLERS[name](lambda v, sigma: torch.full_like(v, c), x, torch.cat([sig, sig.new_zeros(1)]))
    torch.testing.assert_close(out0, torch.full_like(x, c), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,order", [("euler", 1), ("heun", 2), ("dpmpp_2m", 2)])
def test_ode_samplers_convergence_order(name, order):
    """Global error vs the exact PF-ODE solution shrinks by 2^order per doubling of steps."""
    x = MU + torch.linspace(-3, 3, 7, dtype=torch.float64) * 20.0
    errors = []
    for n in (32, 64, 128):
        out = K_SAMPLERS[name](gaussian_denoiser(MU, S), x.clone(), geometric(n))
        errors.append(float((out - ode_solution(x, 20.0, 0.05)).abs().max()))
    for coarse, fine in zip(errors, errors[1:]):
        assert 2 ** order * 0.85 < coarse / fine < 2 ** order * 1.15, errors


def _ancestral_law(sigmas):
    """Independent scalar recursion for ancestral Euler on N(MU, S^2): mean and variance of x."""
    m, var = 0.0, float(sigmas[0]) ** 2
    for sig, nxt in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()):
        k = S * S / (S * S + sig * sig)
        up = math.sqrt(nxt ** 2 * (sig ** 2 - nxt ** 2) / sig ** 2) if nxt > 0 else 0.0
        down = math.sqrt(nxt ** 2 - up ** 2)
        c = 1 + (1 - k) * (down - sig) / sig
        m, var = MU + c * (m - MU), c * c * var + up * up
    return m, math.sqrt(var)


def _lcm_law(sigmas):
    """Independent recursion for LCM: x' = D(x) + sigma' n."""
    m, var = 0.0, float(sigmas[0]) ** 2
    for sig, nxt in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()):
        k = S * S / (S * S + sig * sig)
        m, var = MU + k * (m - MU), k * k * var + nxt * nxt
    return m, math.sqrt(var)


@pytest.mark.parametrize("name,closed_form", [("euler_ancestral", _ancestral_law), ("lcm", _lcm_law)])
def test_stochastic_law_equals_closed_form(name, closed_form):
    sigmas = make_sigmas("karras", 15, 1.0)
    got = sampler_law(K_SAMPLERS[name], MU, S, sigmas)
    assert got == pytest.approx(closed_form(sigmas), abs=1e-10)


@pytest.mark.parametrize("name,steps,tol", [("euler_ancestral", 400, 0.01), ("dpmpp_2m_sde", 200, 0.002)])
def test_stochastic_samplers_reach_the_data_distribution(name, steps, tol):
    """With many steps the output law tends to N(MU, S^2); the error shrinks as steps grow."""
    errs = []
    for n in (steps // 4, steps // 2, steps):
        mean, std = sampler_law(K_SAMPLERS[name], MU, S, exponential_sigmas(n, 0.01, 100.0))
        assert mean == pytest.approx(MU, abs=1e-3)
        errs.append(abs(std - S))
    assert errs[-1] < tol and errs[0] > errs[1] > errs[2], errs


def test_monte_carlo_matches_exact_law():
    """Real Gaussian draws through dpmpp_2m_sde agree with the exact law (plumbing of per-step noise)."""
    sigmas = make_sigmas("karras", 12, 1.0)
    mean, std = sampler_law(K_SAMPLERS["dpmpp_2m_sde"], MU, S, sigmas)
    noise = SeededNoise([7], (200_000,))
    x = noise() * float(sigmas[0])
    out = K_SAMPLERS["dpmpp_2m_sde"](gaussian_denoiser(MU, S), x, sigmas, generator=noise)
    assert float(out.mean()) == pytest.approx(mean, abs=0.01)
    assert float(out.std()) == pytest.approx(std, rel=0.01)


def test_ancestral_step_split():
    down, up = ancestral_step(5.0, 3.0)
    assert down ** 2 + up ** 2 == pytest.approx(9.0)
    assert up == pytest.approx(math.sqrt(9 * (25 - 9) / 25))
    assert ancestral_step(5.0, 0.0) == (0.0, 0.0)


def test_eps_wrapper_is_comfy_eps_parameterisation():
    seen = {}

    def eps_fn(x_vp, r):
        seen["x"], seen["r"] = x_vp, r
        return torch.ones_like(x_vp) * 0.25

    x = torch.randn(2, 3, 2, 2)
    out = EpsDenoiser(eps_fn)(x, 4.0)
    torch.testing.assert_close(seen["x"], x / math.sqrt(17))
    assert seen["r"].dtype == torch.float32 and seen["r"].shape == (2,)
    assert float(seen["r"][0]) == pytest.approx(float(r_from_sigma(4.0)), abs=1e-7)
    torch.testing.assert_close(out, x - 4.0 * 0.25)


@pytest.mark.parametrize("name", sorted(K_SAMPLERS))
def test_sample_api_equals_direct_k_run(name):
    """sample() = EPS wrapper over the network + ComfyUI's full-noise start x = n*sqrt(1+sigma_max^2)."""
    sigmas = make_sigmas("simple", 8, 2.0)
    shape = (2, 1, 8, 8)
    got = sample(gaussian_eps(MU, S), shape, sampler=name, scheduler="simple", steps=8, shift=2.0,
                 seeds=[1, 2], device="cpu", dtype=torch.float32)
    noise = SeededNoise([1, 2], shape[1:])
    x = noise().double() * math.sqrt(1 + float(sigmas[0]) ** 2)
    ref = K_SAMPLERS[name](gaussian_denoiser(MU, S), x, sigmas, generator=lambda: noise().double())
    torch.testing.assert_close(got.double(), ref, rtol=1e-3, atol=1e-3)
