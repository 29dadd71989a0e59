"""Every cache keyed by a file on disk sees a file replaced under the same size and mtime (`cp -p`, `rsync -t`).

The sha256 cache had this fixed alone (tests/test_catalogue_hashes.py); its siblings kept (mtime, size): the
catalogue's and ComfyUI folders' header descriptions, the residency's model key and the executor's cache key
for loader nodes. Each would serve the old file's description, model or result.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from runtime import catalogue, comfy_folders
from runtime.residency import ModelManager
from runtime.stamps import StampCache, stamp


def replace_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Overwrite `path` with `data` (same length) and put its old mtime back, as `cp -p` does."""
    st = path.stat()
    assert len(data) == st.st_size
    time.sleep(0.01)  # let the change time move on coarse clocks
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


def tiny_file(path: Path, value: float) -> None:
    save_file({"w": torch.full((4, 4), value)}, str(path))


def test_the_catalogue_describes_a_replaced_file_again(tmp_path):
    f = tmp_path / "lora.safetensors"
    tiny_file(f, 1.0)
    assert catalogue.describe(f).format != "not safetensors"
    replace_keeping_size_and_mtime(f, b"\0" * f.stat().st_size)  # the same length of garbage
    assert catalogue.describe(f).format == "not safetensors"


def test_comfy_folder_detection_sees_a_replaced_file(tmp_path):
    f = tmp_path / "model.safetensors"
    tiny_file(f, 1.0)
    assert comfy_folders.detected(f).error is None
    replace_keeping_size_and_mtime(f, b"\0" * f.stat().st_size)
    assert comfy_folders.detected(f).error is not None


def test_the_residency_loads_a_replaced_file_again(tmp_path):
    f = tmp_path / "m.safetensors"
    tiny_file(f, 1.0)

    def load_fn(path, kind, dtype, device):
        from safetensors.torch import load_file
        m = torch.nn.Module()
        m.register_buffer("w", load_file(str(path))["w"])
        return m

    mm = ModelManager(load_fn, budget_bytes=1 << 30)
    first = mm.load(f, "stage_a", torch.float32)
    assert float(first.w[0, 0]) == 1.0
    data = f.read_bytes()
    old = torch.full((4, 4), 1.0).numpy().tobytes()
    new = torch.full((4, 4), 2.0).numpy().tobytes()
    replace_keeping_size_and_mtime(f, data.replace(old, new))
    again = mm.load(f, "stage_a", torch.float32)
    assert mm.loads == 2 and float(again.w[0, 0]) == 2.0


def test_the_executor_cache_key_of_a_loader_changes(tmp_path):
    """Loader nodes' fingerprints (our loaders' and the ComfyUI family's) change with the file."""
    from types import SimpleNamespace

    from nodes.comfy import files
    from runtime.weights import file_stamp

    f = tmp_path / "m.safetensors"
    tiny_file(f, 1.0)
    env = SimpleNamespace(weight_path=lambda folder, name: f, comfy_path=lambda folder, name: f)
    ours, theirs = file_stamp(env, "stage_a", "m.safetensors"), files.stamp(env, "vae", "m.safetensors")
    replace_keeping_size_and_mtime(f, f.read_bytes())
    assert file_stamp(env, "stage_a", "m.safetensors") != ours
    assert files.stamp(env, "vae", "m.safetensors") != theirs


def test_stamp_cache_recomputes_only_on_change(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(b"a" * 8)
    calls = []
    cache: StampCache[int] = StampCache()
    assert cache.get(f, lambda: calls.append(1) or len(calls)) == 1
    assert cache.get(tmp_path / "." / "x", lambda: calls.append(1) or len(calls)) == 1  # one key per file
    replace_keeping_size_and_mtime(f, b"b" * 8)
    assert cache.get(f, lambda: calls.append(1) or len(calls)) == 2
