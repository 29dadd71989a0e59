"""Shared toys for the sampling tests: exact Gaussian denoisers and recording models."""
from __future__ import annotations

import math

import torch

S = 0.008
MIN_VAR = math.cos(S / (1 + S) * math.pi / 2) ** 2


def gaussian_denoiser(mu: float, s: float):
    """Exact E[x0 | x] for x0 ~ N(mu, s^2) elementwise and x = x0 + sigma * n (k-space)."""
    def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return mu + s * s / (s * s + sigma * sigma) * (x - mu)
    return denoise


def sigma_of_r(r: torch.Tensor) -> torch.Tensor:
    """Invert the noise condition: r -> v = cos((r+s)/(1+s)*pi/2)^2 / min_var -> sigma^2 = 1/v - 1."""
    r = r.double()
    v = torch.cos((r + S) / (1 + S) * math.pi / 2) ** 2 / MIN_VAR
    return torch.sqrt(1 / v - 1)


def gaussian_eps(mu: float, s: float):
    """Exact eps prediction in VP space for x0 ~ N(mu, s^2): eps = (x_k - D(x_k)) / sigma, x_k = x_vp / a."""
    def eps_fn(x_vp: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        sigma = sigma_of_r(r).view(-1, *([1] * (x_vp.dim() - 1)))
        x_k = x_vp.double() * torch.sqrt(sigma * sigma + 1)
        denoised = mu + s * s / (s * s + sigma * sigma) * (x_k - mu)
        return ((x_k - denoised) / sigma).float()
    return eps_fn


def toy_eps(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """A small deterministic nonlinear 'network' that uses both x and r, elementwise per item."""
    rr = r.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    return torch.tanh(0.5 * x) + 0.3 * rr * torch.sin(x) + 0.1


class CallLog:
    """Wrap an eps_fn and record each call's inputs."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, x, r, **kw):
        self.calls.append((x.clone(), r.clone(), kw))
        return self.fn(x, r)


class FixedNoise:
    """A 'generator' returning a fixed sequence of tensors, one per call."""

    def __init__(self, draws):
        self.draws, self.used = list(draws), 0

    def __call__(self):
        self.used += 1
        return self.draws[self.used - 1]


class BasisNoise:
    """Noise 'draws' that are unit basis vectors: run a sampler on coefficient vectors to get its exact law.

    With an affine (Gaussian-exact) denoiser every sampler is affine in the initial noise and the
    per-step draws, so x = c[0] + sum_j c[j] n_j: mean c[0], variance sum c[1:]^2, exactly.
    Index 0 is the constant, index 1 the initial noise, later indices the per-step draws.
    """

    def __init__(self, dim: int):
        self.dim, self.next = dim, 2

    def __call__(self) -> torch.Tensor:
        e = torch.zeros(self.dim, dtype=torch.float64)
        e[self.next] = 1.0
        self.next += 1
        return e


def law_denoiser(mu: float, s: float):
    """gaussian_denoiser acting on coefficient vectors (the constant term is index 0)."""
    def denoise(v: torch.Tensor, sigma: float) -> torch.Tensor:
        k = s * s / (s * s + sigma * sigma)
        out = k * v
        out[0] = mu + k * (v[0] - mu)
        return out
    return denoise


def sampler_law(sample_fn, mu: float, s: float, sigmas) -> tuple[float, float]:
    """(mean, std) of a k-sampler's output for x0 ~ N(mu, s^2), starting from x = sigmas[0] * n."""
    dim = 2 * len(sigmas) + 2
    v = torch.zeros(dim, dtype=torch.float64)
    v[1] = float(sigmas[0])
    out = sample_fn(law_denoiser(mu, s), v, sigmas, generator=BasisNoise(dim))
    return float(out[0]), float(out[1:].norm())
