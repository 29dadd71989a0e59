"""Every loaded tensor lives in aligned storage of its own, in every container format.

The bitwise output comparisons in test_loading_formats.py only fail when BLAS happens to round a
misaligned operand differently; these tests check the mechanism directly, so they fail on a loader that
hands out views of the file whatever the CPU, thread count or BLAS build.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from models.loading import load
from tests.loading_helpers import (clip_g_state, file_state, prefixed, save, split_qkv, tiny_model, write_diffusers,
                                   zip_folder)

ALIGN = 64  # bytes


def _single(tmp: Path, m) -> tuple[Path, str, torch.dtype | None]:
    return save(tmp / "stage_b.safetensors", file_state("stage_b", m["stage_b"])), "stage_b", None


def _bf16_sft_as_fp32(tmp: Path, m):
    return save(tmp / "stage_b_bf16.sft", file_state("stage_b", m["stage_b"]), torch.bfloat16), "stage_b", "float32"


def _diffusers(tmp: Path, m):
    return write_diffusers(tmp / "decoder", "stage_b", m["stage_b"]), "stage_b", None


def _sharded_bf16(tmp: Path, m):
    folder = write_diffusers(tmp / "prior", "stage_c", m["stage_c"], shards=3, variant="bf16", dtype=torch.bfloat16)
    return folder, "stage_c", "bfloat16"


def _zip(compress: bool):
    def make(tmp: Path, m):
        write_diffusers(tmp / "src" / "text_encoder", "text_encoder", m["text_encoder"])
        return zip_folder(tmp / "src", tmp / "te.zip", compress=compress), "text_encoder", None
    return make


def _all_in_one_split_qkv(tmp: Path, m):
    state = {**prefixed("model.diffusion_model.", split_qkv(file_state("stage_c", m["stage_c"]))),
             **prefixed("text_encoder.", clip_g_state(file_state("text_encoder", m["text_encoder"]),
                                                      openclip_projection=True))}
    return save(tmp / "stable_cascade_stage_c.safetensors", state), "stage_c", None


def _all_in_one_text(tmp: Path, m):
    path, _, _ = _all_in_one_split_qkv(tmp, m)
    return path, "text_encoder", None  # transposed OpenCLIP projection, rebuilt position ids


def _stage_a_repo_root(tmp: Path, m):
    write_diffusers(tmp / "root" / "vqgan", "stage_a", m["stage_a"])
    return tmp / "root", "stage_a", None


FORMATS = {"single file": _single, "bf16 .sft as fp32": _bf16_sft_as_fp32, "diffusers folder": _diffusers,
           "sharded bf16 variant": _sharded_bf16, "stored zip": _zip(False), "deflated zip": _zip(True),
           "all-in-one split qkv": _all_in_one_split_qkv, "all-in-one text encoder": _all_in_one_text,
           "repo root vqgan": _stage_a_repo_root}


@pytest.fixture(scope="module")
def models():
    return {kind: tiny_model(kind, seed=i + 1)
            for i, kind in enumerate(("stage_c", "stage_b", "stage_a", "text_encoder"))}


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_tensor_owns_aligned_storage(tmp_path, models, fmt):
    path, kind, dtype = FORMATS[fmt](tmp_path, models)
    tensors = _tensors(load(path, kind, dtype=dtype))
    bad = {name: (t.data_ptr() % ALIGN, t.storage_offset(), t.untyped_storage().nbytes(), t.nbytes)
           for name, t in tensors.items()
           if t.data_ptr() % ALIGN or t.storage_offset() or t.untyped_storage().nbytes() != t.nbytes
           or not t.is_contiguous()}
    assert not bad, f"(address % {ALIGN}, storage offset, storage bytes, tensor bytes): {bad}"
    ptrs = [t.untyped_storage().data_ptr() for t in tensors.values() if t.nbytes]
    assert len(set(ptrs)) == len(ptrs), "two tensors share one storage"


@pytest.mark.parametrize("fmt", ["single file", "stored zip", "all-in-one split qkv"])
def test_model_does_not_change_when_its_file_is_overwritten(tmp_path, models, fmt):
    """A loaded network is independent of its file: rewriting the file in place changes no weight."""
    path, kind, dtype = FORMATS[fmt](tmp_path, models)
    model = load(path, kind, dtype=dtype)
    before = {k: v.clone() for k, v in _tensors(model).items()}
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little") if path.suffix != ".zip" else 0
    with open(path, "r+b") as f:  # same inode, same size: what a mapping of the file would see
        f.seek(header)
        f.write(bytes(len(data) - header))
    after = _tensors(model)
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert not changed, f"weights followed the file: {changed[:5]}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps (Linux)")
def test_file_is_not_mapped_after_load(tmp_path, models):
    path, kind, _ = _single(tmp_path, models)
    model = load(path, kind)
    maps = Path("/proc/self/maps").read_text()
    assert str(path) not in maps
    del model


def test_lora_tensors_own_aligned_storage(tmp_path):
    """LoRA factors are multiplied into ΔW: the same rule as the networks' weights."""
    from models.lora import read_lora
    g = torch.Generator().manual_seed(3)
    # Odd element counts put every later tensor at an unaligned offset inside the file.
    state = {f"lora_unet_down_blocks_{i}.{w}": torch.randn(3 + i, 5, generator=g)
             for i in range(4) for w in ("lora_down.weight", "lora_up.weight")}
    path = save(tmp_path / "odd.safetensors", state)
    got, _ = read_lora(path)
    assert set(got) == set(state)
    for k, t in got.items():
        assert torch.equal(t, state[k]), k
        assert t.data_ptr() % ALIGN == 0 and t.untyped_storage().nbytes() == t.nbytes, k


def test_file_cut_short_after_opening_is_a_load_error(tmp_path, models):
    """Reads are checked: a file truncated between reading its header and its tensors is named, not zero-filled."""
    from models.loading import LoadError
    from models.loading.safetensors_io import SafetensorsFile
    path, _, _ = _single(tmp_path, models)
    source = SafetensorsFile(path)
    last = max(source.header.ranges, key=lambda k: source.header.ranges[k][1])
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 4)
    with pytest.raises(LoadError, match=f"{last!r} is cut short"):
        source.get(last)
    empty = SafetensorsFile(save(tmp_path / "empty.safetensors", {"e": torch.empty(0, 3)}))
    assert empty.get("e").shape == (0, 3)
