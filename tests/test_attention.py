"""models/attention.py: the chunked bf16 CPU kernel against a float64 rendering of the attention formula."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import models.attention as attn
from models.attention import attention, chunked_bf16_attention, use_kernel


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v in float64, written out (Vaswani et al. 2017, eq. 1)."""
    q, k, v = q.double(), k.double(), v.double()
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    w = torch.exp(logits - logits.amax(-1, keepdim=True))
    return (w / w.sum(-1, keepdim=True)) @ v


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    return ((x.double() - ref).norm() / ref.norm()).item()


def qkv(b, h, lq, lk, d, logit_std, seed=0):
    g = torch.Generator().manual_seed(seed)
    # Head-split views of packed projections, as the AttnBlock hands them over (not contiguous).
    q = (torch.randn(b, lq, h * d, generator=g) * logit_std).unflatten(-1, (h, d)).transpose(1, 2)
    k = torch.randn(b, lk, h * d, generator=g).unflatten(-1, (h, d)).transpose(1, 2)
    v = torch.randn(b, lk, h * d, generator=g).unflatten(-1, (h, d)).transpose(1, 2)
    return q.bfloat16(), k.bfloat16(), v.bfloat16()


@pytest.mark.parametrize("logit_std", [1.0, 6.0])
@pytest.mark.parametrize("shape", [(2, 3, 50, 57, 64), (1, 2, 33, 40, 80), (2, 1, 7, 300, 16)])
def test_chunked_matches_the_formula_as_closely_as_flash(monkeypatch, shape, logit_std):
    # Tiny blocks so that the row loop runs several times and ends on a partial block.
    monkeypatch.setattr(attn, "_BLOCK_ELEMENTS", 1024)
    q, k, v = qkv(*shape, logit_std=logit_std)
    ref = reference(q, k, v)
    ours = chunked_bf16_attention(q, k, v)
    flash = F.scaled_dot_product_attention(q, k, v)
    assert ours.dtype == torch.bfloat16 and ours.shape == q.shape
    # Peaked attention (logit std 6) is where unshifted bf16 logits fail: 1.4e-2 at Stage C's shape.
    assert rel(ours, ref) < 4e-3
    assert rel(ours, ref) <= 2.0 * rel(flash, ref)


def test_the_row_shift_is_what_keeps_large_logits_exact():
    """Without the shift (bf16 logits rounded as they are) the error grows with the logits; with it, not."""
    q, k, v = qkv(2, 4, 96, 110, 64, logit_std=6.0)
    ref = reference(q, k, v)
    s = torch.softmax(q @ k.transpose(-1, -2) * 0.125, dim=-1)  # rounded bf16 logits, no shift
    unshifted = rel(s @ v, ref)
    assert unshifted > 8e-3
    assert rel(chunked_bf16_attention(q, k, v), ref) < unshifted / 3


def test_dispatch():
    q, k, v = qkv(1, 2, 20, 24, 32, logit_std=1.0)
    calls = []
    real = attn.chunked_bf16_attention
    try:
        attn.chunked_bf16_attention = lambda *a: calls.append(a[0].dtype) or real(*a)
        with torch.inference_mode():
            attention(q, k, v)  # bf16 on CPU without dropout: the chunked kernel
            attention(q.float(), k.float(), v.float())  # fp32: SDPA
            with use_kernel("sdpa"):
                attention(q, k, v)
        assert calls == [torch.bfloat16]
        qg = q.detach().requires_grad_()
        out = attention(qg, k, v)  # needs a gradient: SDPA, which has one
        out.float().sum().backward()
        assert qg.grad is not None and calls == [torch.bfloat16]
        assert attention(q, k, v, dropout_p=0.5).shape == q.shape and calls == [torch.bfloat16]
    finally:
        attn.chunked_bf16_attention = real
    with pytest.raises(ValueError, match="not one of"):
        with use_kernel("flash3"):
            pass


def _odd_inputs(name):
    q, k, v = qkv(2, 3, 9, 11, 16, logit_std=1.0)
    if name == "k needs grad":
        return q, k.detach().requires_grad_(), v
    if name == "v needs grad":
        return q, k, v.detach().requires_grad_()
    if name == "no keys":
        return q, k[:, :, :0], v[:, :, :0]
    if name == "k, v broadcast over the batch":
        return q, k[:1], v[:1]
    if name == "3-d":
        return q[0], k[0], v[0]
    raise AssertionError(name)


ODD = ["k needs grad", "v needs grad", "no keys", "k, v broadcast over the batch", "3-d"]


@pytest.mark.parametrize("name", ODD)
def test_inputs_the_chunked_kernel_cannot_take_go_to_sdpa(name):
    """SDPA takes all of these; `attention` must too, with SDPA's result (it raised for each before)."""
    q, k, v = _odd_inputs(name)
    out = attention(q, k, v)
    want = F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach())
    assert out.shape == want.shape and torch.equal(out.detach(), want)
    if out.requires_grad:
        out.float().sum().backward()
        assert (k.grad if k.requires_grad else v.grad).abs().sum() > 0
    with use_kernel("chunked"), pytest.raises(ValueError, match="cannot take these inputs"):
        attention(q, k, v)


def test_chunked_kernel_with_a_narrower_v():
    q, k, v = qkv(2, 3, 9, 11, 16, logit_std=2.0)
    v = v[..., :5]
    out = chunked_bf16_attention(q, k, v)
    assert out.shape == (2, 3, 9, 5) and rel(out, reference(q, k, v)) < 4e-3


def test_use_kernel_holds_for_its_own_thread_only():
    """A bench forcing SDPA in one thread must not switch the kernel of an executor in another."""
    import threading

    q, k, v = qkv(1, 2, 20, 24, 32, logit_std=1.0)
    inside, release, calls = threading.Event(), threading.Event(), []

    def forcing():
        with use_kernel("sdpa"):
            inside.set()
            release.wait(10)

    real = attn.chunked_bf16_attention
    t = threading.Thread(target=forcing)
    t.start()
    try:
        assert inside.wait(10)
        attn.chunked_bf16_attention = lambda *a: calls.append(1) or real(*a)
        with torch.inference_mode():
            attention(q, k, v)
    finally:
        attn.chunked_bf16_attention = real
        release.set()
        t.join()
    assert calls == [1]
