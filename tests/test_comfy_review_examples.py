"""ComfyUI's three other Stable Cascade examples (image_remixing [+_multiple], canny_controlnet,
inpaint_controlnet) written as API prompts the way ComfyUI's editor exports them, run through a real server
on the demo weights at 256x256 with a few steps (comfy_api.md §6.3).

Each run checks more than success: the ControlNet changes the result against strength 0, a second unCLIP
image changes it against one, the inpaint composite keeps every pixel outside the grown mask.
"""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.demo import write_comfy_demo_weights
from nodes.registry import NODES
from runtime.env import Env
from tests.server_harness import http, make_config, run_prompt, running_server

ROOT = Path(__file__).resolve().parent.parent
SKELETON = ROOT / "tests" / "data" / "stable_cascade__text_to_image.prompt.json"
SIZE = 256


def skeleton() -> dict:
    """The published text_to_image API prompt shrunk to SIZE and 2+2 steps (the shared skeleton)."""
    p = json.loads(SKELETON.read_text(encoding="utf-8"))
    p["34"]["inputs"].update(width=SIZE, height=SIZE)
    p["3"]["inputs"]["steps"] = 2
    p["33"]["inputs"]["steps"] = 2
    return p


def remixing(images: tuple[str, ...]) -> dict:
    """image_remixing (one image) / image_remixing_multiple (two chained unCLIPConditioning)."""
    p = skeleton()
    p["41"] = {"inputs": {"ckpt_name": "stable_cascade_stage_c.safetensors"}, "class_type": "unCLIPCheckpointLoader"}
    cond = ["6", 0]
    for i, name in enumerate(images):
        load, enc, uncl = str(50 + 3 * i), str(51 + 3 * i), str(52 + 3 * i)
        p[load] = {"inputs": {"image": name, "upload": "image"}, "class_type": "LoadImage"}
        p[enc] = {"inputs": {"crop": "center", "clip_vision": ["41", 3], "image": [load, 0]},
                  "class_type": "CLIPVisionEncode"}
        p[uncl] = {"inputs": {"strength": 1.0, "noise_augmentation": 0.0, "conditioning": cond,
                              "clip_vision_output": [enc, 0]}, "class_type": "unCLIPConditioning"}
        cond = [uncl, 0]
    p["3"]["inputs"]["positive"] = cond
    p["6"]["inputs"]["text"] = ""  # the remix examples leave the prompt empty: the images say what to draw
    return p


def canny(strength: float = 1.0) -> dict:
    p = skeleton()
    p.update({
        "60": {"inputs": {"image": "example.png", "upload": "image"}, "class_type": "LoadImage"},
        "61": {"inputs": {"upscale_method": "nearest-exact", "width": SIZE, "height": SIZE, "crop": "disabled",
                          "image": ["60", 0]}, "class_type": "ImageScale"},
        "62": {"inputs": {"low_threshold": 0.3, "high_threshold": 0.7, "image": ["61", 0]}, "class_type": "Canny"},
        "63": {"inputs": {"control_net_name": "demo_canny.safetensors"}, "class_type": "ControlNetLoader"},
        "64": {"inputs": {"strength": strength, "start_percent": 0.0, "end_percent": 1.0, "positive": ["6", 0],
                          "negative": ["7", 0], "control_net": ["63", 0], "image": ["62", 0]},
               "class_type": "ControlNetApplyAdvanced"},
    })
    p["3"]["inputs"].update(positive=["64", 0], negative=["64", 1])
    return p


def inpaint(expand: int = 8) -> dict:
    """The inpaint example's mask plumbing (its editor group node expanded, as the API export does)."""
    p = skeleton()
    p.update({
        "70": {"inputs": {"image": "inpaint.png", "upload": "image"}, "class_type": "LoadImage"},
        "71": {"inputs": {"value": 0.5, "mask": ["70", 1]}, "class_type": "ThresholdMask"},
        "72": {"inputs": {"expand": expand, "tapered_corners": True, "mask": ["71", 0]}, "class_type": "GrowMask"},
        "73": {"inputs": {"mask": ["72", 0]}, "class_type": "InvertMask"},
        "74": {"inputs": {"image": ["70", 0], "alpha": ["73", 0]}, "class_type": "JoinImageWithAlpha"},
        "75": {"inputs": {"control_net_name": "demo_inpainting.safetensors"}, "class_type": "ControlNetLoader"},
        "76": {"inputs": {"strength": 1.0, "start_percent": 0.0, "end_percent": 1.0, "positive": ["6", 0],
                          "negative": ["7", 0], "control_net": ["75", 0], "image": ["74", 0]},
               "class_type": "ControlNetApplyAdvanced"},
        "77": {"inputs": {"x": 0, "y": 0, "resize_source": False, "destination": ["70", 0], "source": ["8", 0],
                          "mask": ["72", 0]}, "class_type": "ImageCompositeMasked"},
    })
    p["3"]["inputs"].update(positive=["76", 0], negative=["76", 1])
    p["9"]["inputs"]["images"] = ["77", 0]
    return p


def hole() -> np.ndarray:
    """The inpaint input's hole: a 40x60 rectangle (alpha 0 → mask 1)."""
    m = np.zeros((SIZE, SIZE), bool)
    m[100:140, 60:120] = True
    return m


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("comfy_review")
    config = make_config(tmp, web_dir=ROOT / "web", demo=False)
    write_comfy_demo_weights(config.weights_dir)
    inputs = Path(config.input_dir)
    inputs.mkdir(parents=True, exist_ok=True)
    Image.radial_gradient("L").resize((SIZE, SIZE)).convert("RGB").save(inputs / "example.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(inputs / "example2.png")
    rgba = np.concatenate([rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
                           np.where(hole(), 0, 255).astype(np.uint8)[..., None]], axis=-1)
    Image.fromarray(rgba, "RGBA").save(inputs / "inpaint.png")
    with running_server(config, NODES, Env(config)) as base:
        yield {"base": base, "input": inputs}


def run(base: str, prompt: dict) -> np.ndarray:
    """POST the prompt, wait, return SaveImage's single image as uint8 [H,W,3]."""
    entry = run_prompt(base, copy.deepcopy(prompt), timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (ref,) = entry["outputs"]["9"]["images"]
    status, _, data = http("GET", f"{base}/view?filename={ref['filename']}&subfolder={ref['subfolder']}"
                                  f"&type={ref['type']}")
    assert status == 200
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_image_remixing_one_and_two_images(server):
    one = run(server["base"], remixing(("example.png",)))
    two = run(server["base"], remixing(("example.png", "example2.png")))
    text_only = run(server["base"], {**skeleton(), "6": remixing(())["6"]})
    assert one.shape == two.shape == (SIZE, SIZE, 3)
    assert not np.array_equal(one, text_only)  # the image reached Stage C
    assert not np.array_equal(one, two)  # and the second one did too


def test_canny_controlnet_changes_stage_c(server):
    on = run(server["base"], canny(1.0))
    off = run(server["base"], canny(0.0))
    plain = run(server["base"], skeleton())
    assert on.shape == (SIZE, SIZE, 3)
    assert np.array_equal(off, plain)  # strength 0 is no ControlNet at all
    assert not np.array_equal(on, off)


def test_inpaint_controlnet_composite_keeps_outside_of_grown_mask(server):
    expand = 8
    out = run(server["base"], inpaint(expand))
    original = np.asarray(Image.open(server["input"] / "inpaint.png").convert("RGB"))
    assert out.shape == original.shape == (SIZE, SIZE, 3)
    # The grown hole: the rectangle grown by `expand` pixels each way (tapered corners only shave corners).
    grown = np.zeros((SIZE, SIZE), bool)
    grown[100 - expand:140 + expand, 60 - expand:120 + expand] = True
    assert np.array_equal(out[~grown], original[~grown])
    inner = hole()
    assert (out[inner] != original[inner]).mean() > 0.5  # inside the hole the drawn image replaced it
