"""dtype discipline: bf16 weights stay bf16 through every module; Stage C refuses fp16; meta builds are fast."""
import time

import pytest
import torch

from models.effnet import EFFNET_PRESETS, EffNetEncoder
from models.previewer import PREVIEWER_PRESETS, Previewer
from models.stage_a import STAGE_A_PRESETS, StageA
from models.stage_b import STAGE_B_PRESETS, StageB
from models.stage_c import STAGE_C_PRESETS, StageC
from tests.networks_helpers import randomize_, rel_err


def run_checking_dtypes(model: torch.nn.Module, call) -> torch.Tensor:
    """Run `call(model)` with hooks asserting every module's floating outputs are bf16."""
    seen = []

    def hook(mod, _inp, out):
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for o in outs:
            if isinstance(o, torch.Tensor) and o.is_floating_point():
                seen.append((type(mod).__name__, o.dtype))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            out = call(model)
    finally:
        for h in handles:
            h.remove()
    assert len(seen) > 10
    bad = [s for s in seen if s[1] != torch.bfloat16]
    assert not bad, f"modules leaving bf16: {bad[:5]}"
    return out


def bf16(model):
    return randomize_(model).to(torch.bfloat16).eval()


def test_stage_c_bf16_end_to_end():
    m = bf16(StageC(STAGE_C_PRESETS["tiny"]))
    x = torch.randn(1, 16, 6, 6, dtype=torch.bfloat16)
    out = run_checking_dtypes(m, lambda m: m(x, torch.rand(1), torch.randn(1, 77, 32), torch.randn(1, 1, 32),
                                             torch.zeros(1, 1, 768)))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_stage_b_bf16_end_to_end():
    m = bf16(StageB(STAGE_B_PRESETS["tiny"]))
    x = torch.randn(1, 4, 16, 16, dtype=torch.bfloat16)
    out = run_checking_dtypes(m, lambda m: m(x, torch.rand(1), torch.randn(1, 16, 3, 3), torch.randn(1, 1, 32)))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["stage_a", "effnet", "previewer"])
def test_small_networks_bf16(name):
    if name == "stage_a":
        m = bf16(StageA(STAGE_A_PRESETS["tiny"]))
        out = run_checking_dtypes(m, lambda m: m.decode(m.encode(torch.rand(1, 3, 16, 16, dtype=torch.bfloat16))))
    elif name == "effnet":
        m = bf16(EffNetEncoder(EFFNET_PRESETS["tiny"]))
        out = run_checking_dtypes(m, lambda m: m(torch.rand(1, 3, 64, 64, dtype=torch.bfloat16)))
    else:
        m = bf16(Previewer(PREVIEWER_PRESETS["tiny"]))
        out = run_checking_dtypes(m, lambda m: m(torch.randn(1, 16, 4, 4, dtype=torch.bfloat16)))
    assert out.dtype == torch.bfloat16


def test_float32_input_on_bf16_model_returns_float32():
    m = bf16(StageB(STAGE_B_PRESETS["tiny"]))
    out = m(torch.randn(1, 4, 16, 16), torch.rand(1), torch.randn(1, 16, 3, 3), torch.randn(1, 1, 32))
    assert out.dtype == torch.float32


def test_stage_c_refuses_fp16():
    m = randomize_(StageC(STAGE_C_PRESETS["tiny"])).half()
    with pytest.raises(TypeError, match="float16"):
        m(torch.randn(1, 16, 4, 4), torch.rand(1), torch.randn(1, 77, 32), torch.randn(1, 1, 32),
          torch.zeros(1, 1, 768))


def test_full_size_meta_construction_is_quick():
    t = time.perf_counter()
    with torch.device("meta"):
        c = StageC(STAGE_C_PRESETS["full"])
        b = StageB(STAGE_B_PRESETS["full"])
    assert time.perf_counter() - t < 5.0
    assert sum(p.numel() for p in c.parameters()) == 3_589_103_632
    assert sum(p.numel() for p in b.parameters()) == 1_562_941_136


def test_fused_linear_gelu_matches_plain_ops():
    """The oneDNN-fused bf16 path (inference only) computes exact-erf GELU(linear(x))."""
    from models.common import linear_gelu

    lin = randomize_(torch.nn.Linear(32, 64)).to(torch.bfloat16)
    x = torch.randn(2, 5, 7, 32).to(torch.bfloat16)
    with torch.no_grad():
        ref = torch.nn.functional.gelu(torch.nn.functional.linear(x.float(), lin.weight.float(), lin.bias.float()))
        fused = linear_gelu(x, lin.weight, lin.bias)
    plain = linear_gelu(x, lin.weight, lin.bias)  # weights require grad: the plain, differentiable path
    assert plain.requires_grad
    plain = plain.detach()
    assert fused.shape == plain.shape == (2, 5, 7, 64) and fused.dtype == torch.bfloat16
    assert float((fused.float() - ref).norm() / ref.norm()) < 8e-3
    assert float((plain.float() - ref).norm() / ref.norm()) < 8e-3


def test_scalar_r_and_missing_clip_img():
    """A scalar r is broadcast over the batch; clip_img=None is the zero image embedding."""
    m = randomize_(StageC(STAGE_C_PRESETS["tiny"])).eval()
    x, txt, pooled = torch.randn(2, 16, 4, 4), torch.randn(2, 77, 32), torch.randn(2, 1, 32)
    with torch.no_grad():
        full = m(x, torch.full((2,), 0.3), txt, pooled, torch.zeros(2, 1, 768))
        short = m(x, torch.tensor(0.3), txt, pooled)
    assert torch.equal(full, short)


def test_r_embedding_matches_reference_values():
    """Sines then cosines of r*10000*freq_k, checked against the float64 reference in schedules.json."""
    import json
    from pathlib import Path

    from models.common import r_embedding

    ex = json.loads((Path(__file__).parent / "data" / "schedules.json").read_text())["r_embedding_c_r64_examples"]
    emb = r_embedding(torch.tensor(ex["r"]), 64).double()
    assert emb.shape == (3, 64)
    # float32 phases of up to 10000 rad carry ~3e-4 absolute error, as in the official float32 code.
    assert torch.allclose(emb[:, :4], torch.tensor(ex["emb_first4"], dtype=torch.float64), atol=1e-3)
    assert torch.allclose(emb[:, 31:34], torch.tensor(ex["emb_31_32_33"], dtype=torch.float64), atol=1e-3)
    assert torch.allclose(emb[:, -2:], torch.tensor(ex["emb_last2"], dtype=torch.float64), atol=1e-3)


def test_onednn_linear_and_linear_add_match_plain_ops():
    from models.common import linear, linear_add

    lin = randomize_(torch.nn.Linear(48, 40)).to(torch.bfloat16)
    x, other = torch.randn(3, 6, 48).to(torch.bfloat16), torch.randn(3, 6, 40).to(torch.bfloat16)
    with torch.no_grad():
        ref = torch.nn.functional.linear(x.float(), lin.weight.float(), lin.bias.float())
        y = linear(x, lin.weight, lin.bias)
        z = linear_add(x, lin.weight, lin.bias, other)
    assert y.shape == z.shape == (3, 6, 40) and y.dtype == z.dtype == torch.bfloat16
    assert rel_err(y, ref) < 8e-3
    assert rel_err(z, ref + other.float()) < 8e-3
