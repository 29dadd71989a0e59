"""Review of issue 14: bad links and symlink loops answer 4xx / are left out, never a 500."""
from __future__ import annotations

import os

import pytest

from runtime import comfy_folders
from tests.server_harness import http_json, stub_server


@pytest.fixture
def server(tmp_path):
    with stub_server(tmp_path) as (base, _env, config):
        yield base + "/api", config.weights_dir


@pytest.mark.parametrize("url", ["http://[::1/x.safetensors", "http://h:99999/x.safetensors",
                                 "http://h:abc/x.safetensors", "http://\u2100.com/x.safetensors"])
def test_unparseable_link_is_a_400(server, url):
    api, weights = server
    status, body = http_json("POST", f"{api}/models/download", {"url": url})
    assert status == 400, body
    assert not (weights / ".downloads").exists()  # nothing started


def test_symlink_loop_in_a_folder_is_left_out_of_every_listing(server):
    api, weights = server
    folder = weights / "stage_c"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "real.safetensors").write_bytes(b"x" * 16)
    os.symlink("loop.safetensors", folder / "loop.safetensors")
    os.symlink("b.safetensors", folder / "a.safetensors")
    os.symlink("a.safetensors", folder / "b.safetensors")
    status, names = http_json("GET", f"{api}/models/stage_c")
    assert status == 200 and names == ["real.safetensors"], names
    status, details = http_json("GET", f"{api}/models/stage_c?details=1")
    assert status == 200, details
    assert comfy_folders.resolve_in(folder, "loop.safetensors") is None


def test_symlink_loop_in_the_hf_cache_is_left_out(tmp_path):
    from runtime.hf_cache import HFCache

    snap = tmp_path / "models--stabilityai--stable-cascade" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "real.safetensors").write_bytes(b"x" * 16)
    os.symlink("loop.safetensors", snap / "loop.safetensors")
    assert list(HFCache(tmp_path).entries()) == ["hf:stabilityai/stable-cascade/real.safetensors"]
