"""ComfyUI's model folders read beside ours: listing by keys, loading all-in-one parts, path tricks, start-up."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from runtime import comfy_folders
from runtime.env import Env
from runtime.stamps import StampCache
from nodes.loaders import LoadStageA, LoadStageB, LoadStageC, LoadTextEncoder
from tests.comfy_folders_helpers import tiny_models, write_comfy_layout
from tests.nodes_helpers import tmp_config

OFFERED = {  # what our loaders list from ComfyUI's folders, decided by the files' keys
    "stage_c": ["checkpoints/stable_cascade_stage_c.safetensors", "unet/cascade/stage_c.safetensors"],
    "stage_b": ["checkpoints/stable_cascade_stage_b.safetensors", "checkpoints/stage_b_bare.safetensors",
                "diffusion_models/stage_b.safetensors"],
    "stage_a": ["checkpoints/stable_cascade_stage_b.safetensors", "vae/stage_a.safetensors"],
    "text_encoder": ["checkpoints/stable_cascade_stage_b.safetensors", "checkpoints/stable_cascade_stage_c.safetensors",
                     "text_encoders/clip_g.safetensors", "clip/model.safetensors"],
    "effnet": ["checkpoints/stable_cascade_stage_c.safetensors", "vae/effnet_encoder.safetensors"],
    "previewer": ["checkpoints/stable_cascade_stage_c.safetensors"],
}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("comfy")
    config = tmp_config(tmp, demo=False)
    models = tiny_models()
    files = write_comfy_layout(Path(config.weights_dir), models)
    return Env(config), models, files


def test_our_loaders_list_comfy_files_by_their_keys(layout):
    env, _, _ = layout
    for kind, names in OFFERED.items():
        assert env.weight_files(kind) == names, kind
    # the combo a loader node offers is that list: a bare Stage B in checkpoints/ goes to Load Stage B only
    assert "checkpoints/stage_b_bare.safetensors" in LoadStageB.INPUTS[0].choices(env)
    for cls in (LoadStageC, LoadStageA, LoadTextEncoder):
        assert "checkpoints/stage_b_bare.safetensors" not in cls.INPUTS[0].choices(env)
    junk = "checkpoints/junk.safetensors"
    assert all(junk not in env.weight_files(k) for k in OFFERED)
    assert LoadStageC.check(env, {"file": "checkpoints/stage_b_bare.safetensors"})["file"].startswith(
        "weights file 'checkpoints/stage_b_bare.safetensors' holds no loadable stage_c network: the file holds stage_b")
    assert "unreadable" in LoadStageC.check(env, {"file": junk})["file"]
    assert LoadStageB.check(env, {"file": "checkpoints/stage_b_bare.safetensors"}) == {}


def test_comfy_folder_keys_list_as_comfyui_does(layout):
    env, _, _ = layout
    assert env.comfy_files("checkpoints") == ["stable_cascade_stage_b.safetensors",
                                              "stable_cascade_stage_c.safetensors", "stage_b_bare.safetensors"]
    assert env.comfy_files("diffusion_models") == env.comfy_files("unet") == ["cascade/stage_c.safetensors",
                                                                               "stage_b.safetensors"]
    assert env.comfy_files("text_encoders") == env.comfy_files("clip") == ["clip_g.safetensors", "model.safetensors"]
    assert env.comfy_files("vae") == ["effnet_encoder.safetensors", "stage_a.safetensors"]
    assert env.comfy_files("clip_vision") == ["vit_l.safetensors"]
    assert env.comfy_files("controlnet") == ["canny.safetensors"]
    assert env.comfy_files("loras") == ["style.safetensors"]
    assert env.comfy_path("clip", "model.safetensors") == (env.weights_dir / "clip" / "model.safetensors").resolve()
    assert env.comfy_path("checkpoints", "junk.safetensors") is None
    with pytest.raises(KeyError):
        env.comfy_files("stage_c")


@pytest.mark.parametrize("kind,name,separate", [
    ("stage_c", "checkpoints/stable_cascade_stage_c.safetensors", "unet/cascade/stage_c.safetensors"),
    ("text_encoder", "checkpoints/stable_cascade_stage_c.safetensors", "text_encoders/clip_g.safetensors"),
    ("text_encoder", "checkpoints/stable_cascade_stage_b.safetensors", "clip/model.safetensors"),
    ("effnet", "checkpoints/stable_cascade_stage_c.safetensors", "vae/effnet_encoder.safetensors"),
    ("stage_b", "checkpoints/stable_cascade_stage_b.safetensors", "diffusion_models/stage_b.safetensors"),
    ("stage_a", "checkpoints/stable_cascade_stage_b.safetensors", "vae/stage_a.safetensors"),
])
def test_all_in_one_parts_load_to_the_separate_files_tensors(layout, kind, name, separate):
    env, models, _ = layout
    whole = env.load_model(kind, name, "fp32").state_dict()
    alone = env.load_model(kind, separate, "fp32").state_dict()
    assert set(whole) == set(alone) == set(models[kind].state_dict())
    for key, want in models[kind].state_dict().items():
        assert torch.equal(whole[key], want) and torch.equal(alone[key], want), key
    assert any(t.is_floating_point() and t.abs().sum() > 0 for t in whole.values())


def test_detection_is_cached_per_path_and_file_stamp(tmp_path, monkeypatch):
    env = Env(tmp_config(tmp_path, demo=False))
    files = write_comfy_layout(env.weights_dir, tiny_models())
    calls = []
    real = comfy_folders._detect
    monkeypatch.setattr(comfy_folders, "_detect", lambda p: calls.append(Path(p)) or real(p))
    env.weight_files("stage_b")
    first = len(calls)
    env.weight_files("stage_b"), env.weight_files("stage_a"), env.comfy_files("checkpoints")
    assert len(calls) == first  # listing again reads no header
    # the bare Stage B file replaced by a Stage A one (new size): detected again, offered to the new kind only
    a = env.weights_dir / "vae" / "stage_a.safetensors"
    before = len(calls)
    files["bare_b_in_ckpt"].write_bytes(a.read_bytes())
    os.utime(files["bare_b_in_ckpt"], ns=(1, 1))
    assert "checkpoints/stage_b_bare.safetensors" in env.weight_files("stage_a")
    assert "checkpoints/stage_b_bare.safetensors" not in env.weight_files("stage_b")
    assert calls[before:] == [files["bare_b_in_ckpt"]]  # only the changed file is read again


def test_path_tricks_are_refused(tmp_path):
    outside = tmp_path / "outside"
    env = Env(tmp_config(tmp_path / "app", demo=False))
    files = write_comfy_layout(env.weights_dir, tiny_models())
    outside.mkdir()
    secret = outside / "stage_c.safetensors"
    secret.write_bytes(files["unet_c"].read_bytes())
    (env.weights_dir / "checkpoints" / "link_out.safetensors").symlink_to(secret)
    (env.weights_dir / "unet" / "linked_dir").symlink_to(outside, target_is_directory=True)
    (env.weights_dir / "stage_c").mkdir()
    (env.weights_dir / "stage_c" / "own_link.safetensors").symlink_to(secret)
    for name in ("checkpoints/link_out.safetensors", "unet/linked_dir/stage_c.safetensors",
                 "checkpoints/../unet/cascade/stage_c.safetensors", "../outside/stage_c.safetensors",
                 str(secret), "own_link.safetensors", "unet/../../outside/stage_c.safetensors"):
        assert env.weight_path("stage_c", name) is None, name
        assert LoadStageC.check(env, {"file": name}), name
    assert env.comfy_path("checkpoints", "link_out.safetensors") is None
    assert env.comfy_path("checkpoints", "../unet/cascade/stage_c.safetensors") is None
    assert env.comfy_path("diffusion_models", "linked_dir/stage_c.safetensors") is None
    listed = env.weight_files("stage_c")
    assert listed == ["checkpoints/stable_cascade_stage_c.safetensors", "unet/cascade/stage_c.safetensors"]
    assert "link_out.safetensors" not in env.comfy_files("checkpoints")
    assert "linked_dir/stage_c.safetensors" not in env.comfy_files("unet")


def test_startup_listing_names_unreadable_files_and_counts_comfy_files(tmp_path):
    env = Env(tmp_config(tmp_path, demo=False))
    report = env.weights_report()
    assert "stage_c_bf16.safetensors" in report and "stable_cascade_stage_c.safetensors" in report  # what to get
    write_comfy_layout(env.weights_dir, tiny_models())
    report = env.weights_report()
    line = next(ln for ln in report.splitlines() if ln.startswith("  checkpoints/ (ComfyUI):"))
    assert "junk.safetensors [UNREADABLE, listed nowhere:" in line
    assert "stage_b_bare.safetensors [Stage B]" in line
    assert "diffusion_models/ (ComfyUI): stage_b.safetensors [Stage B]" in report
    # every kind is held by a real (non-demo) ComfyUI file, so no official file is reported missing
    assert "Missing official files" not in report


def test_a_header_nested_too_deeply_is_unreadable_not_a_crash(tmp_path):
    """json recurses once per nesting level: a crafted header used to raise RecursionError out of
    detection, so one file dropped into checkpoints/ broke every listing and the start-up report."""
    env = Env(tmp_config(tmp_path, demo=False))
    (env.weights_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    header = b'{"w":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    (env.weights_dir / "checkpoints" / "deep.safetensors").write_bytes(
        len(header).to_bytes(8, "little") + header)
    assert env.comfy_files("checkpoints") == []
    line = next(ln for ln in env.weights_report().splitlines() if ln.startswith("  checkpoints/"))
    assert "deep.safetensors [UNREADABLE, listed nowhere:" in line and "nested" in line


def test_a_name_listed_from_a_later_subfolder_resolves_there(layout, tmp_path):
    """comfy_files skips an unreadable unet/x and lists diffusion_models/x: comfy_path must agree,
    or a listed file cannot be loaded."""
    env = Env(tmp_config(tmp_path, demo=False))
    good = layout[0].weights_dir / "diffusion_models" / "stage_b.safetensors"
    for sub, data in (("unet", b"junk, not a safetensors file"), ("diffusion_models", good.read_bytes())):
        (env.weights_dir / sub).mkdir(parents=True, exist_ok=True)
        (env.weights_dir / sub / "x.safetensors").write_bytes(data)
    assert env.comfy_files("diffusion_models") == ["x.safetensors"]
    assert env.comfy_path("diffusion_models", "x.safetensors") == \
        (env.weights_dir / "diffusion_models" / "x.safetensors").resolve()


def test_a_file_reached_by_two_spellings_is_detected_once(tmp_path, monkeypatch):
    """A relative or symlinked weights folder: listings pass one spelling, loaders the resolved one."""
    real = tmp_path / "models"
    (real / "checkpoints").mkdir(parents=True)
    write_comfy_layout(real, tiny_models())
    (tmp_path / "weights").symlink_to(real)
    calls = []
    monkeypatch.setattr(comfy_folders, "_DETECTED", StampCache())
    original = comfy_folders._detect
    monkeypatch.setattr(comfy_folders, "_detect", lambda p: calls.append(p) or original(p))
    comfy_folders.detected(tmp_path / "weights" / "checkpoints" / "stable_cascade_stage_c.safetensors")
    comfy_folders.detected(real / "checkpoints" / "stable_cascade_stage_c.safetensors")
    assert len(calls) == 1
