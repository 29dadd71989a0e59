"""ModelHandle / applied(): deltas only inside the block, exact restore, no mutation, stacking adds."""
from __future__ import annotations

import threading

import pytest
import torch

from models.lora import apply_lora
from models.patching import LowRankDelta, ModelHandle, Patch, applied
from tests.lora_helpers import (assert_bit_identical, factors, save, snapshot, stage_c_inputs, tiny_stage_c,
                                tiny_text_encoder)

ATTN = "lora_prior_unet_down_blocks_1_2_attention_attn_"


def kohya_file(tmp_path, name: str, seed: int):
    """A small kohya LoRA on q, out_proj and a channelwise layer of the tiny Stage C."""
    tensors = {}
    for i, (layer, out, cols) in enumerate([(ATTN + "to_q", 32, 32), (ATTN + "out_proj", 32, 32),
                                            ("lora_prior_unet_up_blocks_0_0_channelwise_4", 32, 128)]):
        up, down = factors(out, (cols,), 4, seed=seed * 10 + i)
        tensors |= {f"{layer}.lora_up.weight": up, f"{layer}.lora_down.weight": down,
                    f"{layer}.alpha": torch.tensor(4.0)}
    return save(tmp_path / name, tensors)


def run(model, handle=None):
    with torch.no_grad():
        if handle is None:
            return model(*stage_c_inputs())
        with applied(handle) as m:
            return m(*stage_c_inputs())


def test_strength_zero_is_bit_identical_and_restore_is_exact(tmp_path):
    model = tiny_stage_c()
    base, out0 = snapshot(model), run(model)
    handle = ModelHandle(model)
    zero, _, _ = apply_lora(kohya_file(tmp_path, "a.safetensors", 1), unet=handle, unet_kind="stage_c",
                            strength_unet=0.0)
    assert torch.equal(run(model, zero), out0)
    one, _, _ = apply_lora(kohya_file(tmp_path, "a.safetensors", 1), unet=handle, unet_kind="stage_c")
    out1 = run(model, one)
    assert not torch.allclose(out1, out0)
    assert_bit_identical(model, base)  # removing the LoRA = simply not applying it
    assert torch.equal(run(model), out0)
    assert torch.equal(run(model, one), out1)  # re-applying is deterministic
    assert handle.patches == () and len(one.patches) == 3


def test_stacking_two_loras_equals_the_sum(tmp_path):
    model = tiny_stage_c()
    h0 = ModelHandle(model)
    ha, _, _ = apply_lora(kohya_file(tmp_path, "a.safetensors", 1), unet=h0, unet_kind="stage_c", strength_unet=0.6)
    hb, _, _ = apply_lora(kohya_file(tmp_path, "b.safetensors", 2), unet=h0, unet_kind="stage_c", strength_unet=-0.4)
    hab, _, _ = apply_lora(kohya_file(tmp_path, "b.safetensors", 2), unet=ha, unet_kind="stage_c", strength_unet=-0.4)
    assert len(hab.patches) == len(ha.patches) + len(hb.patches) and len(ha.patches) == 3
    base = snapshot(model)

    def delta(h):
        with applied(h) as m:
            return {k: v.double() - base[k].double() for k, v in m.state_dict().items()}

    da, db, dab = delta(ha), delta(hb), delta(hab)
    for k in base:
        torch.testing.assert_close(dab[k], da[k] + db[k], rtol=1e-5, atol=1e-6)
    assert_bit_identical(model, base)


def test_bf16_merges_in_float32_and_rounds_once():
    lin = torch.nn.Linear(8, 6).to(torch.bfloat16)
    base = lin.weight.detach().clone()
    up, down = factors(6, (8,), 2, seed=3)
    patches = [Patch("weight", LowRankDelta(up, down, 0.5), 1e-3), Patch("weight", LowRankDelta(up, down, 0.5), 1e-3)]
    with applied(ModelHandle(lin, tuple(patches))) as m:
        got = m.weight.detach().clone()
    want = (base.float() + 2e-3 * 0.5 * (up @ down)).to(torch.bfloat16)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)
    assert torch.equal(lin.weight, base)


def test_exception_inside_block_restores_and_nesting_rules():
    model = tiny_stage_c()
    base = snapshot(model)
    up, down = factors(32, (32,), 2, seed=1)
    h = ModelHandle(model, (Patch("down_blocks.0.2.kv_mapper.1.weight", LowRankDelta(up, down)),))
    other = ModelHandle(model, (Patch("clf.1.weight", LowRankDelta(*factors(16, (32,), 2, seed=2))),))
    with pytest.raises(RuntimeError, match="boom"):
        with applied(h):
            raise RuntimeError("boom")
    assert_bit_identical(model, base)
    with applied(h) as m:
        once = snapshot(m)
        with applied(h) as again:  # same handle again: no double application
            assert_bit_identical(again, once)
        with pytest.raises(RuntimeError, match="already patched"):
            with applied(other):
                pass
        assert_bit_identical(m, once)
    assert_bit_identical(model, base)
    with pytest.raises(KeyError, match="not a parameter"):
        with applied(ModelHandle(model, (Patch("nope.weight", LowRankDelta(up, down)),))):
            pass
    assert_bit_identical(model, base)


def test_text_encoder_outputs_change_inside_and_restore(tmp_path):
    te = tiny_text_encoder()
    base = snapshot(te)
    ids = torch.tensor([[49406, 320, 1125, 49407] + [49407] * 73])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        h0, p0 = te(ids, mask)
    up, down = factors(32, (32,), 2, seed=8)
    name = "lora_te_text_model_encoder_layers_0_self_attn_v_proj"
    path = save(tmp_path / "te.safetensors", {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down})
    _, h, _ = apply_lora(path, unet=None, unet_kind="stage_c", text_encoder=ModelHandle(te))
    with applied(h) as m, torch.no_grad():
        h1, _ = m(ids, mask)
    assert not torch.allclose(h0, h1)
    with torch.no_grad():
        assert torch.equal(te(ids, mask)[0], h0)
    assert_bit_identical(te, base)


def test_worker_thread_and_caller_do_not_interleave():
    model = tiny_stage_c()
    base = snapshot(model)
    up, down = factors(32, (32,), 2, seed=1)
    h = ModelHandle(model, (Patch("down_blocks.0.2.kv_mapper.1.weight", LowRankDelta(up, down)),))
    entered, release, errors = threading.Event(), threading.Event(), []

    def worker():
        try:
            with applied(h):
                entered.set()
                release.wait(5)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    entered.wait(5)
    done = threading.Event()

    def second():
        with applied(h):  # blocks on the module lock until the worker leaves
            done.set()

    t2 = threading.Thread(target=second)
    t2.start()
    assert not done.wait(0.2)
    release.set()
    t.join(5)
    t2.join(5)
    assert done.is_set() and not errors
    assert_bit_identical(model, base)


def test_module_stays_copyable_and_picklable_after_patching(tmp_path):
    import copy
    import io

    model = tiny_stage_c()
    up, down = factors(32, (32,), 2, seed=1)
    h = ModelHandle(model, (Patch("down_blocks.0.2.kv_mapper.1.weight", LowRankDelta(up, down)),))
    with applied(h):
        pass
    clone = copy.deepcopy(model)
    torch.save(model, io.BytesIO())
    with applied(h):  # the copy is independent and unpatched
        assert not torch.equal(model.get_parameter("down_blocks.0.2.kv_mapper.1.weight"),
                               clone.get_parameter("down_blocks.0.2.kv_mapper.1.weight"))
        with applied(ModelHandle(clone, h.patches)):
            pass
