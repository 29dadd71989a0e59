"""Model residency: load once, reuse, LRU-evict under a budget, reload evicted modules in place."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from runtime.residency import ModelManager, module_nbytes


class Net(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.a = nn.Linear(width, width)
        self.b = nn.Linear(width, 3)
        self.register_buffer("scale", torch.full((3,), 2.0), persistent=False)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x))) * self.scale


def write_net(path: Path, width: int, seed: int) -> Path:
    torch.manual_seed(seed)
    save_file(Net(width).state_dict(), str(path))
    return path


def load_fn(path, kind, dtype, device):
    sd = load_file(str(path))
    net = Net(sd["a.weight"].shape[0])
    net.load_state_dict(sd)
    return net.to(device=device, dtype=dtype)


@pytest.fixture
def files(tmp_path):
    return [write_net(tmp_path / f"m{i}.safetensors", 64, seed=i) for i in range(3)]


def test_same_file_loads_once_and_returns_same_module(files):
    mm = ModelManager(load_fn, budget_bytes=1 << 30)
    first = mm.load(files[0], "stage_c", torch.float32)
    second = mm.load(files[0], "stage_c", torch.float32)
    assert first is second and mm.loads == 1
    other_dtype = mm.load(files[0], "stage_c", torch.bfloat16)
    assert other_dtype is not first and mm.loads == 2


def test_budget_evicts_lru_and_ensure_reloads_in_place(files):
    size = module_nbytes(load_fn(files[0], "x", torch.float32, "cpu"))
    mm = ModelManager(load_fn, budget_bytes=int(size * 2.5))
    m0 = mm.load(files[0], "stage_c", torch.float32)
    x = torch.randn(4, 64)
    ref0 = m0(x).detach().clone()
    m1 = mm.load(files[1], "stage_b", torch.float32)
    mm.ensure(m0)  # m0 is now the most recently used
    mm.load(files[2], "stage_a", torch.float32)  # over budget: evicts m1 (LRU), not m0
    assert m1.a.weight.is_meta and not m0.a.weight.is_meta
    assert mm.resident_bytes() <= mm.budget_bytes
    assert mm.ensure(m1) is m1 and not m1.a.weight.is_meta  # reloaded in place, same object
    assert mm.loads == 4 and mm.evictions >= 2
    mm.ensure(m0)
    assert torch.equal(m0(x), ref0)  # a reload after eviction gives bit-identical weights
    assert torch.equal(m1.scale, torch.full((3,), 2.0))  # non-persistent buffers survive too


def test_explicit_unload_and_changed_file_reloads(files):
    mm = ModelManager(load_fn, budget_bytes=1 << 30)
    m = mm.load(files[0], "stage_c", torch.float32)
    assert mm.unload(m) and m.a.weight.is_meta and mm.resident_bytes() == 0
    mm.ensure(m)
    assert not m.a.weight.is_meta and mm.loads == 2
    write_net(files[0], 64, seed=99)
    st = files[0].stat()
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fresh = mm.load(files[0], "stage_c", torch.float32)
    assert fresh is not m and mm.loads == 3
    assert not torch.equal(fresh.a.weight, m.a.weight)


def test_unknown_modules_pass_through(files):
    mm = ModelManager(load_fn, budget_bytes=1)
    net = Net(8)
    assert mm.ensure(net) is net and mm.loads == 0


def test_loading_over_budget_is_deferred_to_first_use(files):
    size = module_nbytes(load_fn(files[0], "x", torch.float32, "cpu"))

    def skeleton_fn(path, kind, dtype):
        with torch.device("meta"):
            return Net(64).to(dtype)

    mm = ModelManager(load_fn, budget_bytes=int(size * 1.5), skeleton_fn=skeleton_fn)
    m0 = mm.load(files[0], "stage_c", torch.float32)
    m1 = mm.load(files[1], "stage_b", torch.float32)  # would only fit by evicting m0: deferred
    assert m1.a.weight.is_meta and not m0.a.weight.is_meta and mm.loads == 1
    x = torch.randn(2, 64)
    y0 = m0(x)
    mm.ensure(m1)  # first use: now m0 makes room
    assert m0.a.weight.is_meta and not m1.a.weight.is_meta and mm.loads == 2
    assert torch.equal(m1(x), load_fn(files[1], "x", torch.float32, "cpu")(x))
    mm.ensure(m0)
    assert torch.equal(m0(x), y0)


def test_pinned_module_is_not_evicted_while_in_use(files):
    mm = ModelManager(load_fn, budget_bytes=1)
    m0 = mm.load(files[0], "stage_c", torch.float32)
    with mm.use(m0):
        m1 = mm.load(files[1], "stage_b", torch.float32)  # budget exceeded, but m0 is in use
        assert not m0.a.weight.is_meta and not m1.a.weight.is_meta
        assert not mm.unload(m0)
    mm.ensure(m1)
    assert m0.a.weight.is_meta  # unpinned: evicted at the next squeeze
