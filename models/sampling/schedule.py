"""The GDF cosine schedule of Stable Cascade and ComfyUI's sigma view of it (spec §3.1, §3.4).

The float64 functions are the reference (tests/data/schedules.json is float64) and serve the
k-diffusion/ComfyUI paths. The official "ddpm" loop uses the ``*_f32`` functions below instead: GDF
computes its grid, logSNR, scalers and noise condition r in float32 in a fixed op order, and r feeds a
sinusoidal embedding (r·10000·freq) that turns a 1-ulp difference in r into ~1e-4 in the output.
"""
from __future__ import annotations

import math

import torch

COSINE_S = 0.008
MIN_VAR = math.cos(COSINE_S / (1 + COSINE_S) * math.pi * 0.5) ** 2
VAR_CLAMP = (1e-4, 0.9999)
# GDF computes the logSNR limits once, at shift 1, and applies them after the shift (spec §3.1).
LOGSNR_LIMITS = (math.log(VAR_CLAMP[0] / (1 - VAR_CLAMP[0])), math.log(VAR_CLAMP[1] / (1 - VAR_CLAMP[1])))
COMFY_TABLE_SIZE = 10000


def _f64(t: torch.Tensor | float | list[float]) -> torch.Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


def _unshifted_var(t: torch.Tensor) -> torch.Tensor:
    return torch.cos((t + COSINE_S) / (1 + COSINE_S) * math.pi * 0.5).clamp(0, 1) ** 2 / MIN_VAR


def gdf_logsnr(t: torch.Tensor | float | list[float], shift: float = 1.0) -> torch.Tensor:
    """GDF CosineSchedule logSNR at time t (t=1 is noise), shifted and clamped as in spec §3.1."""
    var = _unshifted_var(_f64(t)).clamp(*VAR_CLAMP)
    logsnr = torch.log(var / (1 - var))
    if shift != 1:
        logsnr = logsnr + 2 * math.log(1 / shift)
    return logsnr.clamp(*LOGSNR_LIMITS)


def vp_scalers(logsnr: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """VPScaler: a = sqrt(sigmoid(logSNR)) = sqrt(alpha_bar), b = sqrt(sigmoid(-logSNR))."""
    logsnr = _f64(logsnr)
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


def noise_cond(logsnr: torch.Tensor | float) -> torch.Tensor:
    """CosineTNoiseCond: r from the (shifted) logSNR by inverting the unshifted cosine formula."""
    v = torch.sigmoid(_f64(logsnr)).clamp(0, 1)
    return torch.acos(torch.sqrt(v * MIN_VAR)) / (math.pi * 0.5) * (1 + COSINE_S) - COSINE_S


def sigma_from_logsnr(logsnr: torch.Tensor | float) -> torch.Tensor:
    """k-diffusion sigma = b/a = exp(-logSNR/2)."""
    return torch.exp(-_f64(logsnr) / 2)


def logsnr_from_sigma(sigma: torch.Tensor | float) -> torch.Tensor:
    """Inverse of sigma_from_logsnr; sigma 0 maps to +inf (a clean sample)."""
    return -2 * torch.log(_f64(sigma))


def r_from_sigma(sigma: torch.Tensor | float) -> torch.Tensor:
    """ComfyUI StableCascadeSampling.timestep: r from sigma via v = 1/(sigma^2+1) (spec §3.4)."""
    sigma = _f64(sigma)
    v = (1 / (sigma * sigma + 1)).clamp(0, 1)
    return torch.acos(torch.sqrt(v * MIN_VAR)) / (math.pi * 0.5) * (1 + COSINE_S) - COSINE_S


def comfy_sigma(t: torch.Tensor | float | list[float], shift: float = 1.0) -> torch.Tensor:
    """ComfyUI's sigma(t): shift applied to the unclamped alpha_bar, clamp after (spec §3.4)."""
    alpha_bar = _unshifted_var(_f64(t))
    if shift != 1:
        alpha_bar = torch.sigmoid(torch.log(alpha_bar / (1 - alpha_bar)) + 2 * math.log(1 / shift))
    alpha_bar = alpha_bar.clamp(*VAR_CLAMP)
    return torch.sqrt((1 - alpha_bar) / alpha_bar)


def comfy_sigma_table(shift: float = 1.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The 10000-entry ascending sigma table ComfyUI samples from: sigma((k+1)/10000).

    dtype float32 reproduces ComfyUI's own table, which it computes in float32 (its cosine_s and
    alpha_bar(0) are float32 tensors, so every operation runs in float32), returned as float64.
    """
    k = torch.arange(COMFY_TABLE_SIZE, dtype=torch.float64)
    t = (k + 1) / COMFY_TABLE_SIZE
    return comfy_sigma_at(t, shift, dtype)


def comfy_sigma_at(t: torch.Tensor, shift: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """comfy_sigma at times t, computed in float64 or (dtype float32) as ComfyUI does; float64 result."""
    if dtype == torch.float64:
        return comfy_sigma(t, shift)
    return _comfy_sigma_f32(torch.as_tensor(t, dtype=torch.float64).float(), shift).double()


def _comfy_sigma_f32(t: torch.Tensor, shift: float) -> torch.Tensor:
    """comfy_sigma with every step rounded to float32 in ComfyUI's order of operations."""
    s = torch.tensor(COSINE_S, dtype=torch.float32)
    min_var = torch.cos(s / (1 + s) * math.pi * 0.5) ** 2
    alpha_bar = torch.cos((t + s) / (1 + s) * math.pi * 0.5) ** 2 / min_var
    if shift != 1:
        logsnr = (alpha_bar / (1 - alpha_bar)).log() + 2 * torch.log(1.0 / torch.tensor(float(shift)))
        alpha_bar = logsnr.sigmoid()
    alpha_bar = alpha_bar.clamp(*VAR_CLAMP)
    return ((1 - alpha_bar) / alpha_bar) ** 0.5


def official_logsnrs(steps: int, shift: float, t_start: float = 1.0, t_end: float = 0.0) -> torch.Tensor:
    """GDF.sample's grid: logSNR at linspace(t_start, t_end, steps+1) (float64, steps+1 values)."""
    return gdf_logsnr(torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64), shift)


# ---- GDF's float32 path (gdf/schedulers.py, scalers.py, noise_conditions.py), op for op ----------------

def _gdf_consts_f32() -> tuple[torch.Tensor, torch.Tensor]:
    """s and min_var as GDF holds them: float32 tensors, min_var = cos(s/(1+s)·π·0.5)**2 in float32."""
    s = torch.tensor([COSINE_S], dtype=torch.float32)
    return s, torch.cos(s / (1 + s) * math.pi * 0.5) ** 2


def _gdf_schedule_f32(t: torch.Tensor, shift: float, limits: tuple[float, float] | None) -> torch.Tensor:
    """BaseSchedule.__call__ over CosineSchedule.schedule: clamp t, var, logSNR, += shift term, clamp."""
    s, min_var = _gdf_consts_f32()
    t = t.clamp(0, 1)
    var = torch.cos((s + t) / (1 + s) * math.pi * 0.5).clamp(0, 1) ** 2 / min_var
    var = var.clamp(*VAR_CLAMP)
    logsnr = (var / (1 - var)).log()
    if shift != 1:
        # GDF adds a numpy float64 scalar to the float32 tensor: torch rounds it to float32 first.
        logsnr = logsnr + 2 * math.log(1 / shift)
    if limits is not None:
        logsnr = logsnr.clamp(*limits)
    return logsnr


def gdf_limits_f32() -> tuple[float, float]:
    """BaseSchedule.reset_limits: the float32 logSNR at t = 1 and t = 0 (shift 1), as Python floats."""
    lo, hi = _gdf_schedule_f32(torch.tensor([1.0, 0.0]), 1.0, None).tolist()
    return lo, hi


def gdf_logsnr_f32(t: torch.Tensor | float | list[float], shift: float = 1.0) -> torch.Tensor:
    """gdf_logsnr computed as GDF does: float32 throughout, limits from gdf_limits_f32; float32 result."""
    return _gdf_schedule_f32(torch.as_tensor(t, dtype=torch.float32), shift, gdf_limits_f32())


def official_logsnrs_f32(steps: int, shift: float, t_start: float = 1.0, t_end: float = 0.0) -> torch.Tensor:
    """GDF.sample's grid in float32: logSNR at torch.linspace(t_start, t_end, steps+1) (float32 linspace)."""
    return gdf_logsnr_f32(torch.linspace(t_start, t_end, steps + 1), shift)


def vp_scalers_f32(logsnr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VPScaler.scalers in float32: a = sqrt(sigmoid(l)), b = sqrt(1 - sigmoid(l)) (not sigmoid(-l))."""
    a_squared = logsnr.float().sigmoid()
    return a_squared.sqrt(), (1 - a_squared).sqrt()


def noise_cond_f32(logsnr: torch.Tensor) -> torch.Tensor:
    """CosineTNoiseCond.cond in float32: r = acos((v·min_var)**0.5) / (π·0.5) · (1+s) − s, clamped to [0, 1]."""
    s, min_var = _gdf_consts_f32()
    var = logsnr.float().sigmoid().clamp(0, 1)
    r = (((var * min_var) ** 0.5).acos() / (math.pi * 0.5)) * (1 + s) - s
    return r.clamp(0, 1)  # BaseNoiseCond.__call__ clamps to the cond's clamp_range, [0, 1] here
