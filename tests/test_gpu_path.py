"""The GPU path on CPU semantics: Stage A's dtype per device, its bf16 error bound, the component bench."""
from __future__ import annotations

import json

import pytest
import torch

from bench import components
from bench.pipeline import _random_module
from tests.nodes_helpers import tmp_config
from runtime.env import Env

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device,cpu_bf16,want", [("cuda", False, torch.bfloat16), ("cpu", True, torch.bfloat16),
                                                   ("cpu", False, torch.float32)])
def test_stage_a_auto_dtype_is_bf16_where_bf16_is_native(tmp_path, monkeypatch, device, cpu_bf16, want):
    import runtime.env as env_module
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: cpu_bf16, raising=False)
    assert env_module.native_bf16(device) == (device == "cuda" or cpu_bf16)
    env = Env(tmp_config(tmp_path, demo=False, extra={"device": device}))
    assert env.device == device
    assert env.resolve_dtype("stage_a", "auto") == want
    assert env.resolve_dtype("stage_a", "fp32") == torch.float32  # fp32 stays selectable
    for kind, dtype in (("stage_c", torch.bfloat16), ("effnet", torch.float32), ("previewer", torch.float32)):
        assert env.resolve_dtype(kind, "auto") == dtype


def test_image_error_figures():
    ref = torch.full((1, 3, 4, 4), 51 / 255)
    x = ref.clone()
    x[0, 0, 0, 0] += 2 / 255
    err = components.image_error(x, ref)
    assert err["max_abs"] == pytest.approx(2 / 255) and err["mean_abs"] == pytest.approx(2 / 255 / 48)
    assert err["share_8bit_off"] == pytest.approx(1 / 48) and err["share_8bit_off_by_more_than_1"] == pytest.approx(1 / 48)
    assert components.within_bound(err) and not components.within_bound(components.image_error(x + 0.01, ref))


@pytest.mark.parametrize("device", DEVICES)
def test_stage_a_bf16_decode_within_the_bound(device):
    net = _random_module("stage_a", "tiny", torch.float32, 3).to(device).eval()
    z = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        ref = net.decode(z).cpu()
        low = net.to(torch.bfloat16).decode(z.to(torch.bfloat16)).float().cpu()
    err = components.image_error(low, ref)
    assert 0 < err["max_abs"] and components.within_bound(err), err


def test_component_bench_smoke_keeps_every_round(tmp_path):
    out = tmp_path / "a.json"
    assert components.main(["--part", "stage_a", "--smoke", "--size", "32", "--rounds", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    for dtype in ("fp32", "bf16"):
        rounds = data[dtype]["rounds"]
        assert [r["order"][0] for r in rounds] == ["ours", "diffusers"]
        assert all(r[s]["seconds"] > 0 and "load_before" in r[s] for r in rounds for s in ("ours", "diffusers"))
        assert data[dtype]["ratios"]["seconds"]["n"] == 2
    assert data["fp32"]["error_vs_ours_fp32"]["ours"]["max_abs"] == 0
    assert data["fp32"]["error_vs_ours_fp32"]["diffusers"]["max_abs"] < 1e-6  # same latent scale both sides
    assert data["bf16"]["ours_within_bf16_bound"] is True and data["bf16_bound"] == components.BF16_BOUND


class _RecordCasts(torch.overrides.TorchFunctionMode):
    """Records (source device, target device, dtype change) of every Tensor.to call."""

    def __init__(self):
        super().__init__()
        self.casts = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is torch.Tensor.to and isinstance(out, torch.Tensor) and out.dtype != args[0].dtype:
            self.casts.append((args[0].device.type, out.device.type))
        return out


@pytest.mark.parametrize("device", ["meta"] + DEVICES)
def test_loader_casts_on_the_target_device(device):
    """An fp32 tensor loaded as bf16 off the CPU is cast there, not on the CPU ('meta' stands in for a GPU)."""
    from models.loading.loader import _convert

    t = torch.randn(4, 5)
    with _RecordCasts() as rec:
        out = _convert(t, torch.bfloat16, device)
    assert out.device.type == device and out.dtype == torch.bfloat16
    assert rec.casts == [(device, device)]  # the one dtype change ran where the tensor ends up
    if device != "meta":
        assert torch.equal(out.cpu(), t.to(torch.bfloat16))
    assert _convert(torch.arange(3), torch.bfloat16, device).dtype == torch.int64  # integer buffers keep theirs
