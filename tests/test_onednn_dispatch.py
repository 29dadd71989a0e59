"""models/common.py: the raw oneDNN Linear fast paths step aside wherever they would be wrong (autograd,
torch.compile), and the plain-op results are what the caller gets there."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.common import linear, linear_add, linear_gelu


def _plain(name, x, w, b, o):
    y = F.linear(x, w, b)
    return {"linear": y, "linear_gelu": F.gelu(y), "linear_add": y + o}[name]


def _ours(name, x, w, b, o):
    if name == "linear":
        return linear(x, w, b)
    if name == "linear_gelu":
        return linear_gelu(x, w, b)
    return linear_add(x, w, b, o)


CASES = [(n, dt, who) for n in ("linear", "linear_gelu", "linear_add") for dt in (torch.float32, torch.bfloat16)
         for who in (("bias", "other") if n == "linear_add" else ("bias",))]


@pytest.mark.parametrize("name,dtype,who", CASES)
def test_gradient_reaches_the_bias_and_the_added_tensor(name, dtype, who):
    """A frozen weight and input with a trainable bias (or residual): the oneDNN op has no autograd, so
    taking it dropped that gradient silently (None) instead of computing it."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(5, 8, generator=g).to(dtype), torch.randn(6, 8, generator=g).to(dtype)
    b, o = torch.randn(6, generator=g).to(dtype), torch.randn(5, 6, generator=g).to(dtype)
    leaf = (b if who == "bias" else o).requires_grad_()
    _ours(name, x, w, b, o).float().square().sum().backward()
    got, leaf.grad = leaf.grad, None
    _plain(name, x, w, b, o).float().square().sum().backward()
    assert got is not None
    torch.testing.assert_close(got, leaf.grad, rtol=2e-2 if dtype == torch.bfloat16 else 1e-5, atol=1e-2)


@pytest.mark.slow
def test_bf16_linears_compile_with_inductor():
    """CASCADE_COMPILE=inductor on a bf16 CPU model: inductor could not lower the raw oneDNN op
    (LoweringException), so the sampler failed on its first step."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, generator=g).bfloat16()
    w, b = torch.randn(8, 16, generator=g).bfloat16(), torch.randn(8, generator=g).bfloat16()
    o = torch.randn(4, 8, generator=g).bfloat16()
    f = torch.compile(lambda x: linear_add(linear_gelu(x, w, b) @ w, w, b, o), backend="inductor")
    with torch.inference_mode():
        y = f(x)
        want = linear_add(linear_gelu(x, w, b) @ w, w, b, o)
    torch.testing.assert_close(y.float(), want.float(), rtol=3e-2, atol=0.5)
