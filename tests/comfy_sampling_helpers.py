"""An independent float64 rendering of ComfyUI's Stable Cascade sampling formulas, for the comfy tests.

Written from ComfyUI's published formulas (model_sampling.StableCascadeSampling, samplers.simple_scheduler,
sample.prepare_noise, k_diffusion default_noise_sampler / sample_euler_ancestral, EPS, cfg_function,
latent_formats.SC_B), not from our code: nothing here imports models/sampling.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path

import torch

from engine.schema import RunContext
from models.patching import ModelHandle
from nodes.comfy import types as C
from tests.nodes_helpers import demo_env, tmp_config

S = 0.008


def alpha_bar64(t: torch.Tensor, shift: float) -> torch.Tensor:
    a = torch.cos((t + S) / (1 + S) * math.pi / 2) ** 2 / math.cos(S / (1 + S) * math.pi / 2) ** 2
    if shift != 1:
        a = torch.sigmoid(torch.log(a / (1 - a)) + 2 * math.log(1 / shift))
    return a.clamp(1e-4, 0.9999)


def sigma64(t: torch.Tensor, shift: float) -> torch.Tensor:
    a = alpha_bar64(t, shift)
    return torch.sqrt((1 - a) / a)


def table64(shift: float) -> torch.Tensor:
    return sigma64(torch.arange(1, 10001, dtype=torch.float64) / 10000, shift)


def timestep64(sigma: float) -> float:
    """StableCascadeSampling.timestep (unshifted inverse)."""
    v = min(max(1 / (sigma * sigma + 1), 0.0), 1.0)
    min_var = math.cos(S / (1 + S) * math.pi / 2) ** 2
    return math.acos(math.sqrt(v * min_var)) / (math.pi / 2) * (1 + S) - S


def simple64(shift: float, steps: int) -> list[float]:
    table = table64(shift)
    stride = len(table) / steps
    return [float(table[-(1 + int(i * stride))]) for i in range(steps)] + [0.0]


def repeat(t: torch.Tensor, batch: int) -> torch.Tensor:
    return t.repeat(math.ceil(batch / t.shape[0]), *([1] * (t.dim() - 1)))[:batch]


def euler_ancestral64(net, cond: dict, uncond: dict, cfg: float, x: torch.Tensor, sigmas: list[float],
                      step_gen: torch.Generator) -> torch.Tensor:
    """k-diffusion's ancestral Euler with ComfyUI's EPS denoiser and plain CFG, all in float64."""

    def denoised(kwargs, x, s):
        r = torch.full((x.shape[0],), timestep64(s), dtype=torch.float64)
        return x - s * net(x / math.sqrt(s * s + 1), r, **kwargs)

    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d_c = denoised(cond, x, s)
        if cfg == 1:
            d = d_c
        else:
            d_u = denoised(uncond, x, s)
            d = d_u + (d_c - d_u) * cfg
        up = min(s_next, math.sqrt(s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2))
        down = math.sqrt(s_next ** 2 - up ** 2)
        if down == 0:
            x = d
        else:
            noise = torch.randn(x.shape, generator=step_gen, dtype=torch.float32).double()
            x = x + (x - d) / s * (down - s) + noise * up
    return x


def comfy_env(tmp: Path):
    """(env, ctx) over demo weights in tmp."""
    env = demo_env(tmp_config(tmp))
    return env, RunContext(node_id="1", prompt_id="p", env=env, cancel=threading.Event())


def demo_objects(env) -> dict:
    """MODEL/VAE objects (float32) built directly from the demo weights, as the loaders would."""
    load = lambda kind: env.load_model(kind, env.weight_files(kind)[0], "fp32")  # noqa: E731
    return {
        "stage_c": C.Model.of(ModelHandle(load("stage_c")), "stage_c"),
        "stage_b": C.Model.of(ModelHandle(load("stage_b")), "stage_b"),
        "stage_a": C.Vae("stage_a", stage_a=ModelHandle(load("stage_a"))),
        "coder": C.Vae("stage_c_coder", effnet=ModelHandle(load("effnet")), previewer=ModelHandle(load("previewer"))),
    }
