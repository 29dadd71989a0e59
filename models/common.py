"""Building blocks shared by Stage C and Stage B (spec §1.1), with the official parameter names.

Speed notes (CPU bf16 is the main target): activations travel as logical NCHW tensors stored
channels-last, so every "permute to NHWC" below is a free view, LayerNorm and the per-pixel Linears
run on contiguous memory, and the depthwise convolution runs in oneDNN's channels-last kernel.
Elementwise tails are fused with addcmul where the algebra allows it; for bf16 CPU inference the
Linear layers call oneDNN directly with GELU / residual-add epilogues; on large levels the GRN scale
is folded into per-item Linear weights. All of this is checked against diffusers in the tests.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.attention import attention


# oneDNN can apply the exact (erf) GELU or a residual add inside the matmul epilogue, saving a full
# pass over the activation (7.0 vs 10.8 ms for a Stage B level-0 MLP on a 16-core AMX Xeon; 16 vs
# 19 ms for a Stage C lite MLP output + residual on the 2-core dev machine).
def _has_onednn_linear() -> bool:
    try:
        op = torch.ops.mkldnn._linear_pointwise
        return torch.backends.mkldnn.is_available() and hasattr(op, "default") and hasattr(op, "binary")
    except (AttributeError, RuntimeError):
        return False


_ONEDNN_LINEAR = _has_onednn_linear()


def _onednn_ok(x: torch.Tensor, weight: torch.Tensor, *others: torch.Tensor | None,
               allow_fp32: bool = False) -> bool:
    # The raw oneDNN op has no autograd: use it only when no input (x, weight, bias, the added tensor)
    # needs a gradient, or that input's gradient is silently dropped. An int8 weight (models/quant.py)
    # is no tensor: it goes through F.linear, which hands it to its own kernel. Under torch.compile a bf16
    # model traces the plain ops instead: inductor cannot lower the raw bf16 op (LoweringException) and
    # fuses by itself. fp32 keeps the raw op there: it lowers, and the eager backend stays bit-exact.
    if not isinstance(weight, torch.Tensor) or (x.dtype == torch.bfloat16 and torch.compiler.is_compiling()):
        return False
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, weight, *others))
    dtype_ok = x.dtype == torch.bfloat16 or (allow_fp32 and x.dtype == torch.float32)
    return _ONEDNN_LINEAR and dtype_ok and x.device.type == "cpu" and not needs_grad


def linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """GELU(F.linear(x, weight, bias)); fused by oneDNN for CPU inference (bf16, and fp32 where it
    also wins by 15-25%), plain ops otherwise."""
    if _onednn_ok(x, weight, bias, allow_fp32=True):
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), weight, bias, "gelu", [], "none")
        return y.view(*x.shape[:-1], y.shape[-1])
    return F.gelu(F.linear(x, weight, bias))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear; for bf16 CPU inference through oneDNN directly (bit-identical, 5-15% faster than addmm)."""
    if _onednn_ok(x, weight, bias):
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), weight, bias, "none", [], "")
        return y.view(*x.shape[:-1], y.shape[-1])
    return F.linear(x, weight, bias)


def linear_add(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               other: torch.Tensor) -> torch.Tensor:
    """F.linear(x, weight, bias) + other; the add runs in oneDNN's matmul epilogue for CPU inference.

    In fp32 too: oneDNN's fp32 matmul is ~2x addmm's at Stage A's 1024² MLP shapes on the dev machine
    (bench/components.py --part stage_a), with fp32 rounding (rel. 2.6e-7 vs 1.4e-7 for addmm against float64)."""
    if _onednn_ok(x, weight, bias, other, allow_fp32=True) and other.dtype == x.dtype:
        x2 = x.reshape(-1, x.shape[-1])
        o2 = other.reshape(x2.shape[0], weight.shape[0]).contiguous()
        y = torch.ops.mkldnn._linear_pointwise.binary(x2, o2, weight, bias, "add")
        return y.view(*x.shape[:-1], y.shape[-1])
    return F.linear(x, weight, bias).add_(other)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """View a logical NCHW tensor as NHWC (free when x is stored channels-last)."""
    return x.permute(0, 2, 3, 1)


def nchw(x: torch.Tensor) -> torch.Tensor:
    """View an NHWC tensor as logical NCHW (channels-last storage)."""
    return x.permute(0, 3, 1, 2)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """Return x stored channels-last (a no-op when it already is)."""
    return x.contiguous(memory_format=torch.channels_last)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of an NCHW tensor (no affine, eps 1e-6 by default)."""

    def __init__(self, c: int, elementwise_affine: bool = False, eps: float = 1e-6):
        super().__init__(c, elementwise_affine=elementwise_affine, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise channels; output is stored channels-last."""
        return nchw(F.layer_norm(nhwc(x), self.normalized_shape, self.weight, self.bias, self.eps))


class Conv1x1(nn.Conv2d):
    """A 1x1 Conv2d (same keys) computed as a per-pixel matmul on the NHWC view."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True):
        super().__init__(c_in, c_out, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the 1x1 convolution; output is stored channels-last."""
        return nchw(linear(nhwc(x).contiguous(), self.weight.flatten(1), self.bias))


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-V2 GRN on NHWC input: gamma * (x * N) + beta + x."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The per-(batch, channel) factor s = 1 + gamma * N, so that GRN(x) = x * s + beta."""
        # Sum of squares + sqrt is ~4x faster on CPU than torch.norm / vector_norm over (H, W).
        g = (x * x).sum(dim=(1, 2), keepdim=True).sqrt()
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return torch.addcmul(torch.ones_like(n), self.gamma, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rewritten as x * (1 + gamma * N) + beta: one pass over x instead of four."""
        return torch.addcmul(self.beta, x, self.scale(x))


class ResBlock(nn.Module):
    """Depthwise conv, LN, channelwise MLP with GRN, residual (level letter 'C')."""

    def __init__(self, c: int, c_skip: int = 0, kernel_size: int = 3, dropout: float = 0.0):
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, kernel_size=kernel_size, padding=kernel_size // 2, groups=c)
        self.norm = LayerNorm2d(c)
        self.channelwise = nn.Sequential(
            nn.Linear(c + c_skip, c * 4), nn.GELU(), GlobalResponseNorm(c * 4), nn.Dropout(dropout),
            nn.Linear(c * 4, c),
        )

    def forward(self, x: torch.Tensor, x_skip: torch.Tensor | None = None) -> torch.Tensor:
        """x (+ optional skip, concatenated after the norm) -> x + MLP(LN(dwconv(x)))."""
        x = to_channels_last(x)
        h = nhwc(self.depthwise(x))
        h = F.layer_norm(h, self.norm.normalized_shape, None, None, self.norm.eps)
        if x_skip is not None:
            h = torch.cat([h, nhwc(x_skip)], dim=-1)
        cw = self.channelwise
        h = linear_gelu(h, cw[0].weight, cw[0].bias)
        b, hh, ww, c4 = h.shape
        # The GRN fold scales the weight per item: not for an int8 weight (models/quant.py).
        if not self.training and hh * ww > c4 // 4 and isinstance(cw[4].weight, torch.Tensor):
            return nchw(self._grn_folded_out(h, x).view(b, hh, ww, -1))
        h = cw[3](cw[2](h))
        return nchw(linear_add(h, cw[4].weight, cw[4].bias, nhwc(x)))

    def _grn_folded_out(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Linear4(GRN(h)) + x with the GRN scale folded into per-item weights (no pass over h).

        Worth it when there are more pixels than channels (Stage B's big levels): scaling the
        [c, 4c] weight per batch item is then cheaper than rewriting the [H*W, 4c] activation.
        """
        grn, lin = self.channelwise[2], self.channelwise[4]
        b, hh, ww, c4 = h.shape
        s = grn.scale(h).view(b, 1, c4)
        w = lin.weight[None] * s  # [b, c, 4c]
        bias = F.linear(grn.beta.view(1, c4), lin.weight, lin.bias)  # beta @ W^T + b  -> [1, c]
        res = nhwc(x).reshape(b, hh * ww, -1) + bias
        return torch.baddbmm(res, h.view(b, hh * ww, c4), w.transpose(1, 2))


class TimestepBlock(nn.Module):
    """FiLM-style modulation by the r-embedding: x * (1 + a) + b (level letter 'T')."""

    def __init__(self, c: int, c_timestep: int, conds: tuple[str, ...] | list[str] = ()):
        super().__init__()
        self.mapper = nn.Linear(c_timestep, c * 2)
        self.conds = tuple(conds)
        for name in self.conds:
            setattr(self, f"mapper_{name}", nn.Linear(c_timestep, c * 2))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Modulate x [B,C,H,W] with the r-embedding t [B, c_r * (1 + len(conds))]."""
        ts = t.chunk(len(self.conds) + 1, dim=1)
        ab = self.mapper(ts[0])
        for i, name in enumerate(self.conds):
            ab = ab + getattr(self, f"mapper_{name}")(ts[i + 1])
        a, b = ab[:, None, None, :].chunk(2, dim=-1)
        x = to_channels_last(x)
        return nchw(torch.addcmul(b, nhwc(x), a + 1))


class _Attention(nn.Module):
    """Holds the packed nn.MultiheadAttention so that keys read `attention.attn.in_proj_weight`."""

    def __init__(self, c: int, nhead: int, dropout: float = 0.0):
        super().__init__()
        self.attn = nn.MultiheadAttention(c, nhead, dropout=dropout, bias=True, batch_first=True)


class AttnBlock(nn.Module):
    """Image tokens attend to [image tokens; conditioning tokens] (level letter 'A')."""

    def __init__(self, c: int, c_cond: int, nhead: int, self_attn: bool = True, dropout: float = 0.0):
        super().__init__()
        self.self_attn = self_attn
        self.nhead = nhead
        self.norm = LayerNorm2d(c)
        self.attention = _Attention(c, nhead, dropout)
        self.kv_mapper = nn.Sequential(nn.SiLU(), nn.Linear(c_cond, c))

    def forward(self, x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """Same math as nn.MultiheadAttention (q,k,v rows of in_proj; scale 1/sqrt(head_dim)), via SDPA."""
        b, c, hh, ww = x.shape
        attn = self.attention.attn
        w, bias = attn.in_proj_weight, attn.in_proj_bias
        kv = self.kv_mapper(kv)
        x = to_channels_last(x)
        xn = F.layer_norm(nhwc(x), (c,), None, None, self.norm.eps).reshape(b, hh * ww, c)
        if self.self_attn:
            # One matmul gives q, k, v for the image tokens; only k, v are needed for the cond tokens.
            q, k_img, v_img = linear(xn, w, bias).split(c, dim=-1)
            k_c, v_c = linear(kv, w[c:], bias[c:]).split(c, dim=-1)
            k = torch.cat([k_img, k_c], dim=1)
            v = torch.cat([v_img, v_c], dim=1)
        else:
            q = F.linear(xn, w[:c], bias[:c])
            k, v = F.linear(kv, w[c:], bias[c:]).split(c, dim=-1)
        d = c // self.nhead
        q = q.unflatten(-1, (self.nhead, d)).transpose(1, 2)
        k = k.unflatten(-1, (self.nhead, d)).transpose(1, 2)
        v = v.unflatten(-1, (self.nhead, d)).transpose(1, 2)
        p = attn.dropout if self.training else 0.0
        o = attention(q, k, v, dropout_p=p)
        o = o.transpose(1, 2).reshape(b, hh * ww, c)
        o = linear_add(o, attn.out_proj.weight, attn.out_proj.bias, nhwc(x).reshape(b, hh * ww, c))
        return nchw(o.view(b, hh, ww, c))


class UpDownBlock2d(nn.Module):
    """1x1 conv plus an optional bilinear resample; `blocks` order fixes the official key index."""

    def __init__(self, c_in: int, c_out: int, mode: str, enabled: bool = True):
        super().__init__()
        if mode not in ("up", "down"):
            raise ValueError(f"mode must be 'up' or 'down', not {mode!r}")
        interp = _Resample(2.0 if mode == "up" else 0.5) if enabled else nn.Identity()
        conv = Conv1x1(c_in, c_out)
        self.blocks = nn.ModuleList([interp, conv] if mode == "up" else [conv, interp])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the blocks in order (no float32 cast: the dtype is kept)."""
        for blk in self.blocks:
            x = blk(x)
        return x


class _Resample(nn.Module):
    """Bilinear (align_corners=True) resampling by a scale factor."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Resample; computed in float32 like the official code, then cast back."""
        y = F.interpolate(x.float(), scale_factor=self.scale, mode="bilinear", align_corners=True)
        return y.to(x.dtype)


def resize_like(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear align_corners resize to `size`, upcast to float32 and cast back (official behaviour)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    y = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=True)
    return to_channels_last(y.to(x.dtype))


def r_embedding(r: torch.Tensor, c_r: int = 64, max_positions: int = 10000) -> torch.Tensor:
    """Sinusoidal embedding of r in [0,1]: sines then cosines, float32, shape [B, c_r]."""
    r = r.float() * max_positions
    half = c_r // 2
    freq = torch.arange(half, device=r.device, dtype=torch.float32)
    freq = torch.exp(freq * (-math.log(max_positions) / (half - 1)))
    emb = r[:, None] * freq[None, :]
    emb = torch.cat([emb.sin(), emb.cos()], dim=1)
    if c_r % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


def make_block(kind: str, c: int, *, c_cond: int, c_r: int, nhead: int, t_conds, c_skip: int = 0,
               kernel_size: int = 3, dropout: float = 0.0, self_attn: bool = True) -> nn.Module:
    """Build one level-config block: 'C' ResBlock, 'T' TimestepBlock, 'A' AttnBlock."""
    if kind == "C":
        return ResBlock(c, c_skip, kernel_size=kernel_size, dropout=dropout)
    if kind == "T":
        return TimestepBlock(c, c_r, conds=t_conds)
    if kind == "A":
        return AttnBlock(c, c_cond, nhead, self_attn=self_attn, dropout=dropout)
    raise ValueError(f"unknown block type {kind!r} (expected C, T or A)")


def model_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32
