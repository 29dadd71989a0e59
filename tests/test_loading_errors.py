"""Clear errors for bad input, dtype handling, and the memory discipline of loading."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import models.loading.loader as load_module
from models.loading import LoadError, detect, load
from tests.loading_helpers import file_state, save, tiny_model, write_diffusers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stage_c_state():
    return file_state("stage_c", tiny_model("stage_c", seed=3))


@pytest.fixture(scope="module")
def stage_b_file(tmp_path_factory):
    return save(tmp_path_factory.mktemp("b") / "stage_b.safetensors", file_state("stage_b", tiny_model("stage_b")))


def test_not_a_stable_cascade_file(tmp_path):
    path = save(tmp_path / "other.safetensors", {"foo.weight": torch.ones(2, 2), "bar.bias": torch.ones(2)})
    with pytest.raises(LoadError, match="not a Stable Cascade file"):
        load(path, "stage_c")
    report = detect(path)
    assert not report.is_stable_cascade and "not a Stable Cascade file" in report.problems[0]


def test_other_known_files_are_named(tmp_path):
    sdxl = save(tmp_path / "sdxl.safetensors", {"model.diffusion_model.input_blocks.0.0.weight": torch.ones(1)})
    with pytest.raises(LoadError, match="SDXL"):
        load(sdxl, "stage_c")
    lora = save(tmp_path / "lora.safetensors", {"lora_prior_unet_x.lora_down.weight": torch.ones(1, 1)})
    with pytest.raises(LoadError, match="LoRA"):
        load(lora, "stage_c")


def test_wrong_kind_says_what_the_file_is(stage_b_file):
    with pytest.raises(LoadError, match=r"not a Stage C checkpoint: it holds Stage B \(tiny\)"):
        load(stage_b_file, "stage_c")
    with pytest.raises(LoadError, match="unknown network kind"):
        load(stage_b_file, "unet")


def test_truncated_file(tmp_path, stage_b_file):
    data = stage_b_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match="truncated file.*download it again"):
        load(cut, "stage_b")
    with pytest.raises(LoadError, match="truncated"):
        detect(cut)
    cut.write_bytes(data[:100])  # not even the whole header
    with pytest.raises(LoadError, match="truncated file: the header"):
        load(cut, "stage_b")


def test_missing_shard_is_named(tmp_path):
    folder = write_diffusers(tmp_path / "prior", "stage_c", tiny_model("stage_c"), shards=3)
    (folder / "diffusion_pytorch_model-00002-of-00003.safetensors").unlink()
    for entry in (folder, folder / "diffusion_pytorch_model.safetensors.index.json",
                  folder / "diffusion_pytorch_model-00001-of-00003.safetensors"):
        with pytest.raises(LoadError, match="missing files: .*00002-of-00003"):
            load(entry, "stage_c")


def test_unreadable_header(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"hello, this is not a checkpoint at all" * 4)
    with pytest.raises(LoadError, match="not a safetensors file"):
        load(bad, "stage_c")
    bad.write_bytes((20).to_bytes(8, "little") + b"{not json at all!!!}")
    with pytest.raises(LoadError, match="unreadable safetensors header"):
        detect(bad)
    header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}'
    bad.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    with pytest.raises(LoadError, match="corrupt safetensors header: 'w' has 8 bytes for shape \\[4\\]"):
        detect(bad)
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(LoadError, match="no such file"):
        load(missing, "stage_c")


def test_missing_unexpected_and_wrong_shaped_keys_are_named(tmp_path, stage_c_state):
    state = dict(stage_c_state)
    del state["clf.1.weight"], state["down_blocks.0.0.depthwise.bias"]
    state["extra.weight"] = torch.ones(3)
    with pytest.raises(LoadError) as err:
        load(save(tmp_path / "c.safetensors", state), "stage_c")
    msg = str(err.value)
    assert "missing keys: clf.1.weight, down_blocks.0.0.depthwise.bias" in msg
    assert "unexpected keys: extra.weight" in msg
    state = dict(stage_c_state)
    state["clip_norm_typo.weight"] = torch.ones(1)
    for i in range(7):
        state[f"junk.{i}"] = torch.ones(1)
    with pytest.raises(LoadError, match=r"unexpected keys: .*\(8 in all\)"):
        load(save(tmp_path / "c2.safetensors", state), "stage_c")
    state = dict(stage_c_state)
    state["clf.1.weight"] = torch.ones(5, 5, 1, 1)
    with pytest.raises(LoadError, match=r"wrong shapes \(1\): clf.1.weight is \[5, 5, 1, 1\]"):
        load(save(tmp_path / "c3.safetensors", state), "stage_c")


def test_incomplete_split_qkv_is_reported(tmp_path, stage_c_state):
    from tests.loading_helpers import split_qkv
    state = split_qkv(stage_c_state)
    victim = next(k for k in state if k.endswith("attn.to_k.weight"))
    del state[victim]
    with pytest.raises(LoadError, match="missing keys: .*in_proj_weight"):
        load(save(tmp_path / "c.safetensors", state), "stage_c")


def test_pickles_are_refused_without_unpickling(tmp_path, monkeypatch, stage_c_state):
    def no_unpickling(*a, **k):
        raise AssertionError("the loader must never unpickle")
    for name in ("x.ckpt", "x.pt", "x.bin", "x.pth"):
        torch.save(stage_c_state, tmp_path / name)
    torch.save(stage_c_state, tmp_path / "disguised.safetensors")
    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    for name in ("x.ckpt", "x.pt", "x.bin", "x.pth"):
        with pytest.raises(LoadError, match="pickle checkpoints .* refused.*safetensors"):
            load(tmp_path / name, "stage_c")
    with pytest.raises(LoadError, match="PyTorch pickle"):
        load(tmp_path / "disguised.safetensors", "stage_c")


def test_dtype_conversion(tmp_path, stage_b_file):
    ref = load(stage_b_file, "stage_b")
    for dtype in (torch.bfloat16, "bf16", "bfloat16", torch.float16):
        m = load(stage_b_file, "stage_b", dtype=dtype)
        want = load_module.resolve_dtype(dtype)
        for k, v in m.state_dict().items():
            assert v.dtype == want and torch.equal(v, ref.state_dict()[k].to(want)), k
    effnet = save(tmp_path / "e.safetensors", file_state("effnet", tiny_model("effnet")))
    m = load(effnet, "effnet", dtype=torch.bfloat16)
    buffers = dict(m.named_buffers())
    assert buffers["backbone.0.1.num_batches_tracked"].dtype == torch.int64  # integers keep their dtype
    assert buffers["backbone.0.1.running_var"].dtype == torch.bfloat16
    bf16_file = save(tmp_path / "b16.safetensors", file_state("stage_b", ref), torch.bfloat16)
    assert next(load(bf16_file, "stage_b").parameters()).dtype == torch.bfloat16  # None keeps the file's dtype
    assert next(load(bf16_file, "stage_b", dtype=torch.float32).parameters()).dtype == torch.float32
    with pytest.raises(LoadError, match="unknown dtype"):
        load(bf16_file, "stage_b", dtype="int7")


def test_stage_c_is_never_float16(tmp_path, stage_c_state):
    path = save(tmp_path / "c.safetensors", stage_c_state)
    with pytest.raises(LoadError, match="Stage C cannot run in float16"):
        load(path, "stage_c", dtype=torch.float16)
    fp16 = save(tmp_path / "c16.safetensors", stage_c_state, torch.float16)
    assert next(load(fp16, "stage_c").parameters()).dtype == torch.bfloat16


def test_config_json_is_checked_against_the_weights(tmp_path):
    model = tiny_model("stage_c")
    folder = write_diffusers(tmp_path / "prior", "stage_c", model)
    config = json.loads((folder / "config.json").read_text())
    config["conditioning_dim"] = 64
    (folder / "config.json").write_text(json.dumps(config))
    (comp,) = detect(folder).components
    assert any("config.json does not match the weights" in p for p in comp.problems)
    assert comp.preset == "tiny"  # the weights' own shapes still identify the size


def test_builds_on_meta_and_leaves_nothing_on_meta(monkeypatch, stage_b_file):
    built = []
    real = load_module.build_on_meta

    def spy(spec, config):
        model = real(spec, config)
        built.append(all(t.is_meta for t in list(model.parameters()) + list(model.buffers())))
        return model
    monkeypatch.setattr(load_module, "build_on_meta", spy)
    m = load(stage_b_file, "stage_b")
    assert built == [True]
    assert not any(t.is_meta for t in list(m.parameters()) + list(m.buffers()))
    assert not any(p.requires_grad for p in m.parameters())


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    from models.loading import load
    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    def touch(model):
        return sum(float(p.double().sum()) for p in model.parameters())
    touch(load(sys.argv[2], "stage_a"))  # warm-up: imports, kernels and allocator pools are not the weights
    before = peak_mb()
    model = load(sys.argv[1], "stage_a")
    touch(model)  # every weight is really read
    print(before, peak_mb())
""")


@pytest.mark.slow
def test_peak_memory_is_about_one_copy(tmp_path):
    """Full-size Stage A (74 MB fp32): loading must not hold a second copy (a second copy measures ~2.1x)."""
    from models.loading.networks import network_spec
    spec = network_spec("stage_a")
    gen = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        shapes = {k: (v.shape, v.dtype) for k, v in spec.build(spec.presets["full"]).state_dict().items()}
    state = {k: torch.randn(s, generator=gen) if d.is_floating_point else torch.zeros(s, dtype=d)
             for k, (s, d) in shapes.items()}
    path = tmp_path / "stage_a.safetensors"
    save_file(state, str(path))
    del state
    tiny = save(tmp_path / "tiny_a.safetensors", file_state("stage_a", tiny_model("stage_a")))
    size_mb = path.stat().st_size / 2**20
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(path), str(tiny)], cwd=ROOT,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    before, after = (float(x) for x in out.stdout.split())
    assert after - before < 1.5 * size_mb, (before, after, size_mb)
