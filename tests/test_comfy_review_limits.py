"""Bad input to ComfyUI's classes through POST /prompt: every problem is a 400 naming the node and input at
validation, or an execution_error naming the node and what is wrong; never a torch message from deep inside
a network, never a multi-GiB allocation, and the server keeps serving.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from nodes.comfy.images import Canny
from runtime.admission import MemoryRefused
from tests.server_harness import http_json, run_prompt
from tests.test_comfy_review_examples import SIZE, run, server, skeleton  # noqa: F401  (server: the fixture)

BIG = 16384  # ComfyUI's MAX_RESOLUTION: every size input allows it


def post(base: str, prompt: dict) -> tuple[int, dict]:
    return http_json("POST", base + "/prompt", {"prompt": prompt})


def execution_error(base: str, prompt: dict) -> dict:
    """Queue a prompt that validates, wait for it, return its execution_error message data."""
    entry = run_prompt(base, prompt)
    assert entry["status"]["status_str"] == "error"
    (data,) = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    return data


def save(node: str, extra: dict) -> dict:
    return {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": [node, 0]}}, **extra}


LOAD = {"class_type": "LoadImage", "inputs": {"image": "example.png"}}


@pytest.mark.parametrize("nodes, bad, name", [
    ({"e": {"class_type": "EmptyImage", "inputs": {"width": BIG, "height": BIG, "batch_size": 4096, "color": 0}}},
     "e", "batch_size"),
    ({"e": {"class_type": "EmptyImage", "inputs": {"width": BIG, "height": BIG, "batch_size": 1, "color": 0}}},
     "e", "batch_size"),
    ({"l": LOAD, "e": {"class_type": "ImageScale", "inputs": {
        "upscale_method": "bicubic", "width": BIG, "height": BIG, "crop": "disabled", "image": ["l", 0]}}},
     "e", "width"),
    ({"l": LOAD, "m": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": BIG, "height": BIG}},
      "e": {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["l", 0], "alpha": ["m", 0]}}},
     "m", "width"),
])
def test_huge_images_and_masks_are_refused_at_validation(server, nodes, bad, name):
    # Before: EmptyImage 16384² x 4096 asked the allocator for 13 TB, 16384² x 1 ran at ~10 GB peak.
    status, body = post(server["base"], save("e", nodes))
    assert status == 400, body
    (error,) = body["node_errors"][bad]["errors"]
    assert error["extra_info"]["input_name"] == name
    assert "pixels" in error["details"]
    assert run(server["base"], skeleton()).shape == (SIZE, SIZE, 3)  # still serving


def test_scale_by_past_the_limit_is_refused_before_allocating(server):
    prompt = save("s", {
        "e": {"class_type": "EmptyImage", "inputs": {"width": 4096, "height": 4096, "batch_size": 1, "color": 0}},
        "s": {"class_type": "ImageScaleBy", "inputs": {"upscale_method": "nearest-exact", "scale_by": 8.0,
                                                       "image": ["e", 0]}}})
    data = execution_error(server["base"], prompt)
    assert data["node_id"] == "s" and data["node_type"] == "ImageScaleBy"
    assert "32768x32768" in data["exception_message"]


@pytest.mark.parametrize("change, node", [
    (lambda p: p["3"]["inputs"].update(model=["42", 0]), "3"),  # Stage B MODEL in the Stage C chain
    (lambda p: p["33"]["inputs"].update(latent_image=["34", 0]), "33"),  # Stage C latent to Stage B
    (lambda p: p["34"]["inputs"].update(width=260), "33"),  # an odd Stage B grid (65 cells)
])
def test_stage_b_refuses_a_grid_it_cannot_run_naming_it(server, change, node):
    # Before: "Calculated padded input size per channel: (1 x 1). Kernel size: (2 x 2)..." or
    # "pixel_unshuffle expects width to be divisible by downscale_factor" from inside Stage B.
    prompt = skeleton()
    change(prompt)
    data = execution_error(server["base"], copy.deepcopy(prompt))
    assert data["node_id"] == node and data["node_type"] == "KSampler"
    assert "stage_b MODEL needs" in data["exception_message"]
    assert data["exception_type"].endswith("ValueError")


class _Models:
    budget_bytes = 0

    def resident_bytes(self) -> int:
        return 0


class _Env:
    models = _Models()


class _Ctx:
    env = _Env()

    def check_interrupted(self) -> None:
        pass


def test_canny_is_refused_past_the_memory_limit_and_runs_per_image(monkeypatch):
    image = torch.rand(2, 64, 64, 3)
    (edges,) = Canny().run(_Ctx(), image, 0.3, 0.7)
    from kornia.filters import canny
    for i in range(2):  # one image at a time gives each image's own edges
        assert torch.equal(edges[i, ..., 0], canny(image[i:i + 1].movedim(-1, 1), 0.3, 0.7)[1][0, 0])
    # A machine whose limit is 1 MiB: 64x64 at ~320 B/px needs 1.3 MiB, so Canny must refuse, not allocate.
    monkeypatch.setattr("runtime.admission.limit_bytes", lambda device, budget, models=None: 1 << 20)
    with pytest.raises(MemoryRefused, match="64x64"):
        Canny().run(_Ctx(), image, 0.3, 0.7)
    assert np.isfinite(edges.numpy()).all()


def test_object_info_ksampler_cfg_keeps_comfyui_precision(server):
    # ComfyUI's KSampler/KSamplerAdvanced cfg: step 0.1 but round 0.01 (a cfg of 4.25 is kept); before, the
    # catalogue gave round = step = 0.1 for every FLOAT, so a ComfyUI frontend would round 4.25 to 4.3.
    status, info = http_json("GET", server["base"] + "/object_info")
    assert status == 200
    for name in ("KSampler", "KSamplerAdvanced"):
        kind, opts = info[name]["input"]["required"]["cfg"]
        assert kind == "FLOAT"
        assert {k: opts[k] for k in ("default", "min", "max", "step", "round")} == {
            "default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}
    # Inputs ComfyUI gives no round of their own keep round = step (its frontend's default precision).
    assert info["ControlNetApplyAdvanced"]["input"]["required"]["start_percent"][1]["round"] == 0.001
