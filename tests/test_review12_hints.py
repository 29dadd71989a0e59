"""Review of issue 12: a hint that does not fit its ControlNet is a node error naming what is wrong, at
Apply ControlNet, through the real server on demo weights: a super-resolution (16-channel) or inpainting
(4-channel) hint into the 1-channel canny ControlNet (it used to be averaged into one channel and run), and a
hint smaller than the canny/inpainting stem's unpadded 3x3 conv (it used to fail inside conv2d in Stage C)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.controlnet import CONTROLNET_PRESETS, ControlNet
from nodes.registry import NODES
from runtime.workflows import fit_to_weights
from tests.nodes_helpers import demo_server, node_id
from tests.server_harness import run_prompt

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with demo_server(tmp_path_factory.mktemp("rev12")) as (base, env):
        inp = Path(env.config.input_dir)
        inp.mkdir(parents=True, exist_ok=True)
        for name, size in (("example.png", 64), ("one.png", 1), ("two.png", 2), ("three.png", 3)):
            rgba = np.full((size, size, 4), 200, np.uint8)
            rgba[: size // 2, ..., 3] = 0  # a transparent top half: the inpainting mask
            Image.fromarray(rgba, "RGBA").save(inp / name)
        yield base, env


def example(env, kind: str, controlnet: str, image: str = "example.png") -> dict:
    doc = fit_to_weights(json.loads((ROOT / "web" / "workflows" / f"controlnet_{kind}.json").read_text()),
                         env, NODES, demo=True)
    doc["nodes"][node_id(doc, "LoadControlNet")]["inputs"]["file"] = f"demo_{controlnet}.safetensors"
    doc["nodes"][node_id(doc, "LoadImage")]["inputs"]["image"] = image
    sampler = doc["nodes"][node_id(doc, "StageCSampler")]["inputs"]
    sampler.update(steps=1, seed=1)
    for key in ("width", "height"):
        if not isinstance(sampler[key], list):
            sampler[key] = 128
    doc["nodes"][node_id(doc, "StageBSampler")]["inputs"].update(steps=1, seed=1)
    return doc


def error_of(entry: dict) -> dict:
    assert entry["status"]["status_str"] == "error", entry["status"]
    (err,) = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    return err


@pytest.mark.parametrize("kind,channels", [("super_resolution", 16), ("inpainting", 4)])
def test_a_hint_made_for_another_controlnet_is_refused_by_apply(app, kind, channels):
    base, env = app
    err = error_of(run_prompt(base, example(env, kind, "canny")))
    assert err["node_type"] == "ApplyControlNet"
    assert "1-channel" in err["exception_message"] and f"got {channels} channels" in err["exception_message"]


@pytest.mark.parametrize("kind", ["canny", "inpainting"])
def test_a_hint_too_small_for_the_stem_is_named_at_apply(app, kind):
    base, env = app
    for image in ("one.png", "two.png"):
        err = error_of(run_prompt(base, example(env, kind, kind, image)))
        assert err["node_type"] == "ApplyControlNet"
        assert "at least 3x3" in err["exception_message"]
    assert run_prompt(base, example(env, kind, kind, "three.png"))["status"]["status_str"] == "success"


def test_the_network_names_the_minimum_itself():
    """ComfyUI's classes reach the same check through ControlNet.forward."""
    net = ControlNet(CONTROLNET_PRESETS["tiny_canny"]).eval()
    with pytest.raises(ValueError, match="at least 3x3"):
        net(torch.rand(1, 1, 2, 5))
    assert len(net(torch.rand(1, 1, 3, 3))) == 4
    large = ControlNet(CONTROLNET_PRESETS["tiny_super_resolution"]).eval()
    assert large(torch.rand(1, 16, 1, 1))[0].shape[-2:] == (1, 1)  # 1x1 convs: any size runs
