"""End to end through the server on demo weights: the example ControlNet workflows (canny, inpainting,
super-resolution) shipped in web/workflows/ validate and run with our nodes; strength 0 gives the image of
the workflow without the ControlNet byte for byte, strength 1 another one."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nodes.registry import NODES
from runtime.workflows import fit_to_weights
from tests.nodes_helpers import demo_server, node_id
from tests.test_comfy_examples_e2e import run_prompt, saved_images

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("canny", "inpainting", "super_resolution")
SIZE = 256


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cnet_e2e")
    with demo_server(tmp) as (base, env):
        # example.png: structure for the edges, a transparent hole for the inpainting mask (1 - alpha).
        rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
        rgba[..., :3] = np.linspace(0, 255, SIZE, dtype=np.uint8)[None, :, None]
        rgba[64:192, 64:192, :3] = 255
        rgba[..., 3] = 255
        rgba[96:160, 96:160, 3] = 0
        Path(env.config.input_dir).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba, "RGBA").save(Path(env.config.input_dir) / "example.png")
        yield base, env


def workflow(env, kind: str, **apply) -> dict:
    """The shipped example on the demo weights (its ControlNet's demo file), 2+1 steps, fixed seeds."""
    doc = fit_to_weights(json.loads((ROOT / "web" / "workflows" / f"controlnet_{kind}.json").read_text()),
                         env, NODES, demo=True)
    doc["nodes"][node_id(doc, "LoadControlNet")]["inputs"]["file"] = f"demo_{kind}.safetensors"
    for cls, steps in (("StageCSampler", 2), ("StageBSampler", 1)):
        node = doc["nodes"][node_id(doc, cls)]
        node["inputs"].update(steps=steps, seed=3)
        node["ui"]["seed_control"] = "fixed"
    if kind == "super_resolution":  # the image is enlarged 2x: give half the demo size
        Image.open(Path(env.config.input_dir) / "example.png").resize((SIZE // 2, SIZE // 2)).save(
            Path(env.config.input_dir) / "example_half.png")
        doc["nodes"][node_id(doc, "LoadImage")]["inputs"]["image"] = "example_half.png"
    doc["nodes"][node_id(doc, "ApplyControlNet")]["inputs"].update(apply)
    return doc


def without_control(doc: dict) -> dict:
    sampler = doc["nodes"][node_id(doc, "StageCSampler")]["inputs"]
    sampler.pop("control")
    for key in ("width", "height"):
        if isinstance(sampler[key], list):
            sampler[key] = SIZE
    return doc


def image_bytes(base, doc) -> bytes:
    (img,) = saved_images(base, run_prompt(base, doc))
    assert img.size == (SIZE, SIZE)
    return img.tobytes()


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_example_workflow_runs_and_strength_zero_is_no_controlnet(app, kind):
    base, env = app
    with_cnet = image_bytes(base, workflow(env, kind))
    plain = image_bytes(base, without_control(workflow(env, kind)))
    assert with_cnet != plain
    assert image_bytes(base, workflow(env, kind, strength=0.0)) == plain
