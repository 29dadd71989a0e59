"""Scaled dot-product attention for the UNets' AttnBlocks, with a faster exact-class kernel for bf16 on CPU.

PyTorch's CPU flash-attention kernel is the slow part of a bf16 step on CPU: at Stage C lite's 576 image
tokens it reaches ~150 GFLOP/s where the Linear layers reach ~900 (27 % of a Stage C step, 31 % of a Stage B
step at 1024², measured with torch.profiler on the 2-core dev machine). `chunked_bf16_attention` runs the same
maths as a few large oneDNN batched matmuls over blocks of queries: 0.71x the flash kernel's time there once
warm (bench/attention.py, bench/results/attention_cpu.json), in the flash kernel's accuracy class:

- bf16 logits are the catch: a matmul with bf16 output rounds each logit s to 2^-9 * |s|, and softmax turns an
  absolute logit error into a relative probability error, so for large logits (peaked attention) the error
  grows with |s| (1.4e-2 relative at logits of std 6 unshifted, against 1.7e-3 for the flash kernel, which keeps fp32
  logits, and 2.3e-3 shifted as below).
- Each row is therefore shifted by its maximum inside the matmul: `baddbmm(-m, q, k^T)` adds -m to the fp32
  accumulator before the one rounding to bf16, so the logits that carry the probability mass (those near
  the maximum) are small and nearly exact. m comes from a first, plain bf16 matmul; it need not be exact,
  only near the maximum. Softmax is shift-invariant, so nothing else changes.

`attention()` picks it for bf16 on CPU without dropout (fp16 keeps SDPA: its unshifted first-pass logits
could overflow); everything else goes to `F.scaled_dot_product_attention`. `use_kernel("sdpa")` forces SDPA (benches, tests).
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
import torch.nn.functional as F

KERNELS = ("auto", "sdpa", "chunked")
# A context variable, not a global: a bench or test forcing a kernel in one thread (or task) must not
# switch the kernel under another executor running at the same time.
_kernel: contextvars.ContextVar[str] = contextvars.ContextVar("cascade_attention_kernel", default="auto")

# Elements of one block of logits (batch*heads x rows x keys): 4M bf16 = 8 MiB, measured best on the 2-core
# dev machine between 1M and 16M (flat from 2M to 8M).
_BLOCK_ELEMENTS = 1 << 22


@contextlib.contextmanager
def use_kernel(name: str) -> Iterator[None]:
    """Within the block (this thread / context only), `attention` uses kernel `name` ("auto", "sdpa" or
    "chunked"); ValueError otherwise."""
    if name not in KERNELS:
        raise ValueError(f"attention kernel {name!r} is not one of {', '.join(KERNELS)}")
    token = _kernel.set(name)
    try:
        yield
    finally:
        _kernel.reset(token)


def _chunked_unsupported(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> str | None:
    """Why the chunked kernel cannot take these inputs (None when it can). SDPA takes all of them."""
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return "it has no autograd (its out= products refuse inputs that need a gradient)"
    if not q.ndim == k.ndim == v.ndim == 4:
        return "it takes 4-d [B,H,L,d] inputs only"
    if not q.shape[:2] == k.shape[:2] == v.shape[:2] or k.shape[2] != v.shape[2] or k.shape[3] != q.shape[3]:
        return ("it does not broadcast: q, k, v need the same B and H, k and v the same length, "
                "q and k the same d")
    if k.shape[2] == 0:
        return "it needs at least one key (a row maximum)"
    if not q.dtype == k.dtype == v.dtype or not q.device == k.device == v.device:
        return "q, k and v need one dtype and one device"
    return None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for q [B,H,Lq,d], k [B,H,Lk,d], v [B,H,Lk,dv] -> [B,H,Lq,dv] in q's dtype.

    Inputs the chunked kernel does not take (gradients, broadcasting, other ranks, no keys) go to SDPA;
    under a forced `use_kernel("chunked")` they raise ValueError naming why.
    """
    kernel = _kernel.get()
    if kernel == "auto":
        eligible = q.device.type == "cpu" and q.dtype == torch.bfloat16 and dropout_p == 0.0
        kernel = "chunked" if eligible and _chunked_unsupported(q, k, v) is None else "sdpa"
    elif kernel == "chunked":
        why = "it has no dropout" if dropout_p else _chunked_unsupported(q, k, v)
        if why:
            raise ValueError(f"the chunked attention kernel cannot take these inputs: {why}")
    if kernel == "chunked":
        return chunked_bf16_attention(q, k, v)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


def chunked_bf16_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Row-max-shifted attention in blocks of queries; same shapes and result class as `attention`.

    q [B,H,Lq,d], k [B,H,Lk,d], v [B,H,Lk,dv] (Lk >= 1), any layout -> [B,H,Lq,dv]. Logits are
    accumulated in fp32 by oneDNN and rounded once, after the shift by an estimate m of each row's maximum
    (see the module docstring); softmax in fp32 inside torch.softmax; probabilities rounded to q's dtype
    for the product with v, as the flash kernel does.
    """
    b, h, lq, d = q.shape
    lk = k.shape[2]
    scale = d ** -0.5
    qf = q.reshape(b * h, lq, d)
    kt = k.reshape(b * h, lk, d).transpose(1, 2)
    dv = v.shape[3]
    vf = v.reshape(b * h, lk, dv)
    out = torch.empty(b * h, lq, dv, dtype=q.dtype, device=q.device)
    rows = max(16, min(lq, _BLOCK_ELEMENTS // max(1, b * h * lk)))
    for i in range(0, lq, rows):
        qc = qf[:, i:i + rows]
        s = torch.bmm(qc, kt)
        m = s.amax(dim=-1, keepdim=True).mul_(-scale)  # -scale * (row max), rounded: only near the max
        s = torch.baddbmm(m, qc, kt, alpha=scale, out=s)
        torch.bmm(torch.softmax(s, dim=-1), vf, out=out[:, i:i + rows])
    return out.view(b, h, lq, dv)
