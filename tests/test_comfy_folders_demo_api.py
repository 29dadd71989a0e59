"""The demo's ComfyUI-named files, and GET /models listing ComfyUI's folders beside ours."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models import demo
from runtime.env import Env
from tests.comfy_folders_helpers import tiny_models, write_comfy_layout
from tests.nodes_helpers import tmp_config
from tests.server_harness import http_json, stub_server

DATA = Path(__file__).parent / "data"


def example_checkpoints() -> set[str]:
    """Every ckpt_name ComfyUI's shared Stable Cascade examples load."""
    names = set()
    for path in DATA.glob("stable_cascade__*.prompt.json"):
        for node in json.loads(path.read_text()).values():
            if "ckpt_name" in node["inputs"]:
                names.add(node["inputs"]["ckpt_name"])
    return names


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    return Env(tmp_config(tmp_path_factory.mktemp("demo"), demo=True))


def test_demo_writes_the_files_comfyui_examples_name(demo_env):
    env = demo_env
    assert example_checkpoints() == {"stable_cascade_stage_c.safetensors", "stable_cascade_stage_b.safetensors"}
    assert example_checkpoints() <= set(env.comfy_files("checkpoints"))
    assert env.comfy_files("vae") == ["stage_a.safetensors"]
    assert env.comfy_files("text_encoders") == ["model.safetensors"]
    # listed after our own demo files, so the default workflow keeps naming demo_*
    assert env.weight_files("stage_c") == ["demo_stage_c.safetensors", "checkpoints/stable_cascade_stage_c.safetensors"]
    assert "demo" in env.weights_report().split("checkpoints/ (ComfyUI):")[1].splitlines()[0]


@pytest.mark.parametrize("kind,name", [("stage_c", "checkpoints/stable_cascade_stage_c.safetensors"),
                                       ("effnet", "checkpoints/stable_cascade_stage_c.safetensors"),
                                       ("previewer", "checkpoints/stable_cascade_stage_c.safetensors"),
                                       ("text_encoder", "checkpoints/stable_cascade_stage_c.safetensors"),
                                       ("stage_b", "checkpoints/stable_cascade_stage_b.safetensors"),
                                       ("stage_a", "checkpoints/stable_cascade_stage_b.safetensors"),
                                       ("stage_a", "vae/stage_a.safetensors"),
                                       ("text_encoder", "text_encoders/model.safetensors")])
def test_demo_comfy_files_hold_the_demo_networks(demo_env, kind, name):
    """Each part of a ComfyUI-named demo file is exactly the network of the matching demo_* file."""
    env = demo_env
    ours = next(n for n in env.weight_files(kind) if n.startswith("demo_"))
    want = env.load_model(kind, ours, "fp32").state_dict()
    got = env.load_model(kind, name, "fp32").state_dict()
    assert set(got) == set(want)
    for key, value in want.items():
        assert torch.equal(got[key], value), key


def test_demo_never_shadows_a_users_file(tmp_path):
    weights = tmp_path / "weights"
    (weights / "clip").mkdir(parents=True)
    (weights / "checkpoints").mkdir()
    users_clip = weights / "clip" / "model.safetensors"
    users_clip.write_bytes(b"the user's text encoder")
    users_b = weights / "checkpoints" / "stable_cascade_stage_b.safetensors"
    users_b.write_bytes(b"the user's Stage B")
    written = demo.write_comfy_demo_weights(weights)
    assert [p.relative_to(weights).as_posix() for p in written] == [
        "checkpoints/stable_cascade_stage_c.safetensors", "vae/stage_a.safetensors",
        "clip_vision/demo_clip_vision_l14.safetensors", "controlnet/demo_canny.safetensors",
        "controlnet/demo_inpainting.safetensors", "controlnet/demo_super_resolution.safetensors"]
    assert not (weights / "text_encoders" / "model.safetensors").exists()  # would hide clip/model.safetensors
    assert users_clip.read_bytes() == b"the user's text encoder" and users_b.read_bytes() == b"the user's Stage B"
    assert not demo.comfy_demo_missing(weights) and demo.write_comfy_demo_weights(weights) == []


def test_models_routes_list_comfy_folders(tmp_path):
    write_comfy_layout(tmp_path / "weights", tiny_models())
    (tmp_path / "weights" / "checkpoints" / "notes.txt").write_text("not a model")
    with stub_server(tmp_path) as (base, _, _):
        status, folders = http_json("GET", base + "/models")
        assert status == 200
        assert {"checkpoints", "diffusion_models", "text_encoders", "vae", "clip_vision", "controlnet",
                "loras", "stage_c"} <= set(folders)
        assert "unet" not in folders and "clip" not in folders  # ComfyUI's legacy names are no keys of their own
        assert http_json("GET", base + "/models/checkpoints")[1] == [
            "stable_cascade_stage_b.safetensors", "stable_cascade_stage_c.safetensors", "stage_b_bare.safetensors"]
        merged = ["cascade/stage_c.safetensors", "stage_b.safetensors"]
        assert http_json("GET", base + "/models/diffusion_models")[1] == merged
        assert http_json("GET", base + "/api/models/unet")[1] == merged
        assert http_json("GET", base + "/models/clip")[1] == ["clip_g.safetensors", "model.safetensors"]
        assert http_json("GET", base + "/models/controlnet")[1] == ["canny.safetensors"]
        assert http_json("GET", base + "/models/clip_vision")[1] == ["vit_l.safetensors"]
        for bad in ("/models/..", "/models/%2E%2E", "/models/checkpoints%2F..", "/models/nope"):
            assert http_json("GET", base + bad)[0] == 404, bad
