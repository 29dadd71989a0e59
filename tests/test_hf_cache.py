"""The official repos in a Hugging Face cache laid out as huggingface_hub writes it (refs/, snapshots/<rev>/
with files symlinked into blobs/), holding tiny random networks: listed, loaded in place through the
nodes (diffusers folders with bf16 variants, single files, ComfyUI's all-in-one), links out refused."""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

from engine.schema import RunContext
from nodes.comfy.loaders import CheckpointLoaderSimple
from nodes.loaders import LoadStageA, LoadStageB, LoadStageC, LoadTextEncoder
from runtime.env import Env
from runtime.hf_cache import HFCache
from tests.comfy_folders_helpers import stage_c_all_in_one, tiny_models
from tests.loading_helpers import file_state, save, write_diffusers
from tests.nodes_helpers import tmp_config

PRIOR, DECODER = "stabilityai/stable-cascade-prior", "stabilityai/stable-cascade"


def cache_repo(cache: Path, repo: str, rev: str, tree: Path, *, main: bool = True) -> Path:
    """Move the files of `tree` into `cache` as one snapshot of `repo`: blobs named by hash, relative links."""
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    snap = repo_dir / "snapshots" / rev
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = f.relative_to(tree)
        blob = repo_dir / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.move(f, blob)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if main:
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / "main").write_text(rev)
    return snap


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hf")
    models = tiny_models()
    cache = tmp / "hub"
    prior = tmp / "stage" / "prior_tree"
    write_diffusers(prior / "prior", "stage_c", models["stage_c"])
    write_diffusers(prior / "prior", "stage_c", models["stage_c"], variant="bf16", dtype=torch.bfloat16)
    write_diffusers(prior / "text_encoder", "text_encoder", models["text_encoder"], variant="bf16",
                    dtype=torch.bfloat16)
    (prior / "model_index.json").write_text("{}")
    cache_repo(cache, PRIOR, "a" * 40, prior)
    # An older revision of the decoder repo holds the Stage A VQGAN; refs/main names the newer one.
    old = tmp / "stage" / "decoder_old"
    write_diffusers(old / "vqgan", "stage_a", models["stage_a"])
    save(old / "effnet_encoder.safetensors", file_state("effnet", models["effnet"]))
    cache_repo(cache, DECODER, "b" * 40, old, main=False)
    new = tmp / "stage" / "decoder_new"
    write_diffusers(new / "decoder", "stage_b", models["stage_b"], shards=2)
    save(new / "comfyui_checkpoints" / "stable_cascade_stage_c.safetensors", stage_c_all_in_one(models))
    save(new / "effnet_encoder.safetensors", file_state("effnet", models["effnet"]))
    cache_repo(cache, DECODER, "c" * 40, new)
    # A link leading out of the repo folder is never listed.
    outside = save(tmp / "outside" / "stage_c_bf16.safetensors", file_state("stage_c", models["stage_c"]))
    (cache / f"models--{DECODER.replace('/', '--')}" / "snapshots" / ("c" * 40) / "stage_c_bf16.safetensors"
     ).symlink_to(outside)
    return tmp, cache, models


def env_for(tmp: Path, cache: Path) -> Env:
    return Env(tmp_config(tmp / "app", demo=False, hf_cache_dir=cache))


def same(module, model) -> bool:
    got = module.state_dict()
    return all(torch.equal(got[k], v.to(got[k].dtype)) for k, v in model.state_dict().items())


def test_snapshots_list_their_diffusers_folders_and_files(hub):
    tmp, cache, _ = hub
    env = env_for(tmp, cache)
    assert env.weight_files("stage_c") == [f"hf:{PRIOR}/prior",
                                           f"hf:{DECODER}/comfyui_checkpoints/stable_cascade_stage_c.safetensors"]
    assert env.weight_files("stage_b") == [f"hf:{DECODER}/decoder"]
    assert env.weight_files("stage_a") == [f"hf:{DECODER}/vqgan"]  # from the older snapshot
    assert f"hf:{PRIOR}/text_encoder" in env.weight_files("text_encoder")
    assert env.comfy_files("checkpoints") == [f"hf:{DECODER}/comfyui_checkpoints/stable_cascade_stage_c.safetensors"]
    # refs/main's snapshot wins a name both hold.
    effnet = env.weight_path("effnet", f"hf:{DECODER}/effnet_encoder.safetensors")
    assert ("c" * 40) in effnet.parts
    # What huggingface_hub's scanner sees, at start-up.
    report = env.weights_report()
    assert f"{DECODER}, 2 revision(s)" in report and f"{PRIOR}, 1 revision(s)" in report


def test_diffusers_parts_load_through_our_nodes_in_place(hub):
    tmp, cache, models = hub
    before = sorted((p, p.lstat().st_mtime_ns) for p in cache.rglob("*"))
    env = env_for(tmp, cache)
    ctx = RunContext("1", "p", env, threading.Event())
    for node, kind, name, dtype in ((LoadStageC, "stage_c", f"hf:{PRIOR}/prior", "bf16"),
                                    (LoadStageB, "stage_b", f"hf:{DECODER}/decoder", "fp32"),
                                    (LoadStageA, "stage_a", f"hf:{DECODER}/vqgan", "fp32"),
                                    (LoadTextEncoder, "text_encoder", f"hf:{PRIOR}/text_encoder", "bf16")):
        assert node.check(env, {"file": name, "dtype": dtype}) == {}
        module = node().run(ctx, name, dtype)[0].module
        env.models.ensure(module)
        assert same(module, models[kind]), kind
    assert sorted((p, p.lstat().st_mtime_ns) for p in cache.rglob("*")) == before  # nothing written
    assert not any((tmp / "app" / "weights").rglob("*.safetensors"))
    # ComfyUI's all-in-one file from the repo's comfyui_checkpoints/ through ComfyUI's loader.
    name = f"hf:{DECODER}/comfyui_checkpoints/stable_cascade_stage_c.safetensors"
    assert CheckpointLoaderSimple.check(env, {"ckpt_name": name}) == {}


@pytest.mark.parametrize("name", [f"hf:{DECODER}/stage_c_bf16.safetensors",  # links out of the repo
                                  f"hf:{DECODER}/../outside/stage_c_bf16.safetensors",
                                  f"hf:{PRIOR}/prior/../../../../../outside/stage_c_bf16.safetensors",
                                  "hf:someone/else/prior", f"hf:{PRIOR}/prior/", "/etc/passwd"])
def test_names_outside_the_listing_are_refused(hub, name):
    tmp, cache, _ = hub
    env = env_for(tmp, cache)
    assert env.weight_path("stage_c", name) is None
    assert "file" in LoadStageC.check(env, {"file": name, "dtype": "auto"})
    assert name not in env.weight_files("stage_c")


def test_no_cache_or_an_empty_one_lists_nothing(tmp_path):
    assert HFCache(None).entries() == {} and HFCache(tmp_path / "missing").entries() == {}
    env = env_for(tmp_path, tmp_path / "missing")
    assert env.weight_files("stage_c") == [] and "Hugging Face" not in env.weights_report()
