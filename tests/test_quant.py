"""int8 Stage C / Stage B layers (models/quant.py) against float64 references of the same quantised maths,
the loader option, residency (eviction + reload, memory estimate) and 'none' leaving outputs untouched."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.common import Conv1x1, ResBlock
from models.quant import cpu_has_int8_dot, quantize_model
from models.stage_b import STAGE_B_PRESETS, StageB
from models.stage_c import STAGE_C_PRESETS, StageC
from runtime.residency import ModelManager, module_nbytes

needs_vnni = pytest.mark.skipif(not cpu_has_int8_dot(), reason="int8_dynamic needs fbgemm and VNNI/AMX")


def ref_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8, written out in float64: q = round(w / (max|w_row| / 127))."""
    w = w.detach().double().reshape(w.shape[0], -1)
    scale = w.abs().amax(dim=1) / 127
    return torch.round(w / scale[:, None]).clamp(-127, 127), scale


def ref_dynamic_x(x: torch.Tensor) -> torch.Tensor:
    """fbgemm's per-tensor uint8 activation quantisation (ChooseQuantizationParams), dequantised, float64."""
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = float(torch.tensor((hi - lo) / 255, dtype=torch.float32))
    zp = min(max(round(-lo / scale), 0), 255)  # from min and from max agree up to rounding here
    q = torch.clamp(torch.round(x.double() / scale) + zp, 0, 255)
    return (q - zp) * scale


def _quantised_linear(mode: str, dtype: torch.dtype, c_in: int = 96, c_out: int = 80) -> tuple:
    torch.manual_seed(0)
    lin = nn.Linear(c_in, c_out).to(dtype).requires_grad_(False)
    w, b = lin.weight.clone(), lin.bias.clone()
    return quantize_model(nn.Sequential(lin), mode)[0], w, b


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_weight_linear_matches_float64_dequantised_reference(dtype):
    lin, w, b = _quantised_linear("int8_weight", dtype)
    q, scale = ref_weight(w)
    assert lin.weight_int8.dtype == torch.int8 and torch.equal(lin.weight_int8.double(), q)
    assert "weight" not in dict(lin.named_parameters())
    x = torch.randn(2, 7, w.shape[1]).to(dtype)
    want = x.double() @ (q * scale[:, None]).T + b.double()
    got = lin(x)
    assert got.dtype == dtype and got.shape == want.shape
    # bf16: the dequantised weight and the output are each rounded once to 8 mantissa bits.
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert (got.double() - want).abs().max() <= tol * want.abs().max()
    # and it is int8 maths, not the float weight: far from x·w where the quantisation step shows
    assert (got.double() - (x.double() @ w.double().T + b.double())).abs().max() > 0


@needs_vnni
def test_int8_dynamic_linear_matches_float64_reference_with_activation_rounding():
    lin, w, b = _quantised_linear("int8_dynamic", torch.float32)
    q, scale = ref_weight(w)
    x = torch.randn(3, 11, w.shape[1]) * 3
    want = ref_dynamic_x(x) @ (q * scale[:, None]).T + b.double()
    no_act_rounding = x.double() @ (q * scale[:, None]).T + b.double()
    got = lin(x).double()
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    assert (no_act_rounding - want).abs().max() > 100 * (got - want).abs().max()  # the rounding is real


def test_conv1x1_and_packed_attention_projection_are_int8():
    torch.manual_seed(1)
    conv = Conv1x1(24, 40).requires_grad_(False)
    w, b = conv.weight.clone(), conv.bias.clone()
    quantize_model(nn.Sequential(conv), "int8_weight")
    q, scale = ref_weight(w)
    x = torch.randn(2, 24, 5, 6)
    want = torch.einsum("bchw,oc->bohw", x.double(), q * scale[:, None]) + b.double()[:, None, None]
    assert (conv(x).double() - want).abs().max() <= 1e-5 * want.abs().max()
    mha = nn.MultiheadAttention(32, 2, batch_first=True).requires_grad_(False)
    w = mha.in_proj_weight.clone()
    quantize_model(nn.Sequential(mha), "int8_weight")
    q, scale = ref_weight(w)
    kv = torch.randn(1, 4, 32)
    want = kv.double() @ (q[32:] * scale[32:, None]).T  # the k, v rows only, as AttnBlock slices them
    got = F.linear(kv, mha.in_proj_weight[32:])
    assert (got.double() - want).abs().max() <= 1e-5 * want.abs().max()


def _tiny(cls, presets, seed):
    torch.manual_seed(seed)
    net = cls(presets["tiny"]).eval().requires_grad_(False)
    for p in net.parameters():
        p.normal_(0, 0.05)
    return net.bfloat16()


def _stage_c_inputs():
    torch.manual_seed(3)
    return torch.randn(1, 16, 8, 8), torch.rand(1), torch.randn(1, 77, 32), torch.randn(1, 1, 32)


def test_none_leaves_the_model_and_its_output_bit_identical():
    net = _tiny(StageC, STAGE_C_PRESETS, 0)
    before = net(*_stage_c_inputs())
    assert quantize_model(net, "none") is net and not any(b.dtype == torch.int8 for b in net.buffers())
    assert torch.equal(net(*_stage_c_inputs()), before)


@pytest.mark.parametrize("mode", ["int8_weight", pytest.param("int8_dynamic", marks=needs_vnni)])
def test_whole_tiny_stages_run_int8_with_small_error_and_half_the_bytes(mode):
    c = _tiny(StageC, STAGE_C_PRESETS, 0)
    ref = c(*_stage_c_inputs()).float()
    qc = quantize_model(copy.deepcopy(c), mode)
    out = qc(*_stage_c_inputs()).float()
    assert 0 < ((out - ref).norm() / ref.norm()).item() < 0.05
    assert module_nbytes(qc) < 0.6 * module_nbytes(c)
    b = _tiny(StageB, STAGE_B_PRESETS, 1)
    # Stage B's big level takes the GRN-folded path in bf16; quantised it must take the plain one.
    assert any(isinstance(m, ResBlock) for m in b.modules())
    args = (torch.randn(1, 4, 16, 16), torch.rand(1), torch.randn(1, 16, 4, 4), torch.randn(1, 1, 32))
    ref_b = b(*args).float()
    out_b = quantize_model(copy.deepcopy(b), mode)(*args).float()
    assert 0 < ((out_b - ref_b).norm() / ref_b.norm()).item() < 0.05


def test_residency_evicts_and_reloads_a_quantised_model_and_estimates_int8_bytes(tmp_path):
    from safetensors.torch import save_file

    net = _tiny(StageC, STAGE_C_PRESETS, 0)
    path = tmp_path / "c.safetensors"
    save_file(net.state_dict(), str(path))

    def load_fn(p, kind, dtype, device):
        fresh = _tiny(StageC, STAGE_C_PRESETS, 0)
        return fresh.to(dtype)

    mm = ModelManager(load_fn, budget_bytes=1 << 30)
    plain = mm.load(path, "stage_c", torch.bfloat16)
    quant = mm.load(path, "stage_c", torch.bfloat16, quantize="int8_weight")
    assert quant is not plain and mm.loads == 2  # a different residency entry
    assert mm.load(path, "stage_c", torch.bfloat16, quantize="int8_weight") is quant and mm.loads == 2
    before = quant(*_stage_c_inputs())
    assert mm.unload(quant) and quant.clip_txt_mapper.weight_int8.device.type == "meta"
    mm.ensure(quant)
    assert quant.clip_txt_mapper.weight_int8.dtype == torch.int8
    assert torch.equal(quant(*_stage_c_inputs()), before)
    assert mm.resident_bytes() == module_nbytes(plain) + module_nbytes(quant) < 1.6 * module_nbytes(plain)
    size = path.stat().st_size
    assert ModelManager._estimate(path, torch.bfloat16) == size
    assert ModelManager._estimate(path, torch.bfloat16, "int8_weight") == size // 2
    assert ModelManager._estimate(path, torch.bfloat16, "int8_dynamic") == size  # + fbgemm's packed copy


def test_loader_nodes_take_the_quantize_option(tmp_path):
    import threading

    from engine.schema import RunContext
    from nodes.registry import NODES
    from runtime.admission import prompt_models_bytes
    from tests.nodes_helpers import demo_env, tmp_config

    env = demo_env(tmp_config(tmp_path))
    ctx = RunContext(node_id="1", prompt_id="p", env=env, cancel=threading.Event())
    for kind, cls in (("stage_c", "LoadStageC"), ("stage_b", "LoadStageB")):
        node = NODES[cls]
        assert "quantize" in [i.name for i in node.INPUTS]
        file = env.weight_files(kind)[0]
        plain = node().run(ctx, file, "auto")[0].module
        same = node().run(ctx, file, "auto", "none")[0].module
        quant = node().run(ctx, file, "auto", "int8_weight")[0].module
        assert same is plain and quant is not plain
        env.models.ensure(quant)
        assert any(b.dtype == torch.int8 for b in quant.buffers())
        assert not any(b.dtype == torch.int8 for b in plain.buffers())
        prompt = {"1": {"class": node, "inputs": {"file": file, "dtype": "auto"}}}
        full = prompt_models_bytes(env, prompt)
        prompt["1"]["inputs"]["quantize"] = "int8_weight"
        assert prompt_models_bytes(env, prompt) < full


def test_a_lora_on_an_int8_model_is_refused_with_the_reason(tmp_path):
    from safetensors.torch import save_file

    from models.lora import apply_lora
    from models.lora.report import LoraError
    from models.patching import ModelHandle

    net = quantize_model(_tiny(StageC, STAGE_C_PRESETS, 0), "int8_weight")
    g = torch.Generator().manual_seed(0)
    key = "prior.up_blocks.0.2.kv_mapper.1"
    path = tmp_path / "l.safetensors"
    save_file({f"{key}.lora_A.weight": torch.randn(4, 32, generator=g),
               f"{key}.lora_B.weight": torch.randn(32, 4, generator=g)}, str(path))
    with pytest.raises(LoraError, match="quantize int8_weight.*quantize none"):
        apply_lora(path, unet=ModelHandle(net), unet_kind="stage_c")


@pytest.mark.parametrize("mode", ["int8_weight", pytest.param("int8_dynamic", marks=needs_vnni)])
def test_eviction_frees_the_int8_weights_of_a_model_that_has_run(tmp_path, mode):
    """Nothing but the module's buffers may hold the int8 weights (or fbgemm's packed copies): a model
    that has run, then evicted, must free them, or Stage C and Stage B taking turns on a small card
    would each keep its weights after eviction."""
    import gc
    import weakref

    from safetensors.torch import save_file

    path = tmp_path / "c.safetensors"
    save_file(_tiny(StageC, STAGE_C_PRESETS, 0).state_dict(), str(path))
    mm = ModelManager(lambda p, kind, dtype, device: _tiny(StageC, STAGE_C_PRESETS, 0).to(dtype),
                      budget_bytes=1 << 30)
    net = mm.load(path, "stage_c", torch.bfloat16, quantize=mode)
    before = net(*_stage_c_inputs())
    weights = [weakref.ref(b) for n, b in net.named_buffers() if n.endswith("_int8")]
    assert weights
    assert mm.unload(net)
    gc.collect()
    assert [w for w in weights if w() is not None] == []
    mm.ensure(net)  # the reload runs on its own buffers, with the same result
    assert torch.equal(net(*_stage_c_inputs()), before)


def test_off_the_cpu_a_quantised_model_is_quantised_in_host_memory_then_moved(tmp_path):
    """On a GPU the unquantised weights never reach the card: the read goes to the host, int8 goes over
    ('meta' stands in for the card). Unquantised models still load straight onto the device."""
    from safetensors.torch import save_file

    path = tmp_path / "c.safetensors"
    save_file(_tiny(StageC, STAGE_C_PRESETS, 0).state_dict(), str(path))
    asked = []

    def load_fn(p, kind, dtype, device):
        asked.append(str(device))
        return _tiny(StageC, STAGE_C_PRESETS, 0).to(dtype).to(device)

    mm = ModelManager(load_fn, budget_bytes=1 << 30, device="meta")
    quant = mm.load(path, "stage_c", torch.bfloat16, quantize="int8_weight")
    assert asked == ["cpu"]
    assert quant.clip_txt_mapper.weight_int8.device.type == "meta"
    assert all(t.device.type == "meta" for t in list(quant.parameters()) + list(quant.buffers()))
    mm.load(path, "stage_c", torch.bfloat16)
    assert asked == ["cpu", "meta"]
