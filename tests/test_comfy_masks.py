"""ComfyUI's mask classes and LoadImage's MASK against hand-computed small masks and test-written PNGs."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.catalogue import node_info
from engine.graph import validate_prompt
from engine.schema import RunContext
from nodes.comfy.masks import GrowMask, InvertMask, LoadImageMask, SolidMask, ThresholdMask
from nodes.images import LoadImage
from nodes.registry import NODES
from runtime.env import Env
from tests.nodes_helpers import tmp_config


@pytest.fixture
def env(tmp_path):
    return Env(tmp_config(tmp_path, demo=False))


def ctx(env=None):
    return RunContext(node_id="1", prompt_id="p", env=env, cancel=threading.Event())


def t(rows):
    return torch.tensor(rows, dtype=torch.float32).unsqueeze(0)


DOT = t([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
CROSS = t([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
BOX = t([[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]])


def test_invert_and_threshold():
    m = t([[0.0, 0.25], [0.5, 0.75]])
    assert torch.equal(InvertMask().run(ctx(), m)[0], t([[1.0, 0.75], [0.5, 0.25]]))
    assert torch.equal(ThresholdMask().run(ctx(), m, 0.5)[0], t([[0, 0], [0, 1]]))  # strictly greater
    assert torch.equal(ThresholdMask().run(ctx(), m[0], 0.2)[0], t([[0, 1], [1, 1]]))  # [H,W] accepted
    with pytest.raises(TypeError, match="MASK"):
        InvertMask().run(ctx(), torch.zeros(1, 1, 2, 2))


def test_grow_mask_cross_vs_box_and_shrink():
    assert torch.equal(GrowMask().run(ctx(), DOT, 1, True)[0], CROSS)
    assert torch.equal(GrowMask().run(ctx(), DOT, 1, False)[0], BOX)
    two = GrowMask().run(ctx(), DOT, 2, True)[0]  # a diamond of radius 2
    diamond = torch.tensor([[float(abs(r - 2) + abs(c - 2) <= 2) for c in range(5)] for r in range(5)])
    assert torch.equal(two[0], diamond)
    assert torch.equal(GrowMask().run(ctx(), BOX, -1, True)[0], DOT)
    assert torch.equal(GrowMask().run(ctx(), CROSS, -1, False)[0], torch.zeros_like(CROSS))
    assert torch.equal(GrowMask().run(ctx(), BOX, 0, True)[0], BOX)


def test_grow_mask_grey_values_and_border():
    # grey dilation takes the max of the window; at the border the window does not see zeros beyond
    m = t([[0.2, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.7]])
    grown = GrowMask().run(ctx(), m, 1, False)[0]
    assert torch.equal(grown, t([[0.2, 0.2, 0.0], [0.2, 0.7, 0.7], [0.0, 0.7, 0.7]]))
    full = torch.ones(1, 3, 3)
    assert torch.equal(GrowMask().run(ctx(), full, -1, False)[0], full)  # the border is not eroded away


def test_solid_mask():
    (m,) = SolidMask().run(ctx(), 0.3, 4, 2)
    assert m.shape == (1, 2, 4) and m.dtype == torch.float32 and torch.allclose(m, torch.full((1, 2, 4), 0.3))


def _rgba_png(path: Path) -> np.ndarray:
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = np.arange(12).reshape(3, 4) * 20
    rgba[..., 2] = 7
    rgba[..., 3] = [[255, 0, 128, 64], [255, 255, 0, 0], [10, 20, 30, 40]]
    Image.fromarray(rgba, "RGBA").save(path)
    return rgba


def test_load_image_gives_rgb_and_mask_from_alpha(env):
    rgba = _rgba_png(Path(env.config.input_dir) / "a.png")
    img, mask = LoadImage().run(ctx(env), "a.png")
    assert img.shape == (1, 3, 4, 3) and mask.shape == (1, 3, 4) and mask.dtype == torch.float32
    np.testing.assert_array_equal(img[0].numpy(), rgba[..., :3] / np.float32(255))
    np.testing.assert_allclose(mask[0].numpy(), 1 - rgba[..., 3] / 255.0, atol=1e-7)
    Image.new("RGB", (5, 3), (1, 2, 3)).save(Path(env.config.input_dir) / "rgb.png")
    img, mask = LoadImage().run(ctx(env), "rgb.png")
    assert img.shape == (1, 3, 5, 3) and torch.equal(mask, torch.zeros(1, 64, 64))


def test_load_image_frames_and_palette_transparency(env):
    root = Path(env.config.input_dir)
    frames = [Image.new("RGBA", (4, 2), (10 * i, 0, 0, a)) for i, a in ((1, 255), (2, 0), (3, 51))]
    frames[0].save(root / "anim.png", save_all=True, append_images=frames[1:], duration=10)
    img, mask = LoadImage().run(ctx(env), "anim.png")  # an animated PNG: one batch item a frame
    assert img.shape == (3, 2, 4, 3) and mask.shape == (3, 2, 4)
    assert torch.allclose(img[:, 0, 0, 0], torch.tensor([10, 20, 30]) / 255.0)
    assert torch.allclose(mask[:, 1, 3], torch.tensor([0.0, 1.0, 0.8]))
    pal = Image.new("P", (3, 1))
    pal.putpalette([v for k in range(256) for v in (k, k, k)])
    pal.putdata([5, 9, 5])
    pal.save(root / "pal.png", transparency=9)  # a palette image whose index 9 is transparent
    img, mask = LoadImage().run(ctx(env), "pal.png")
    assert torch.equal(mask, t([[0.0, 1.0, 0.0]])) and torch.allclose(img[0, 0, :, 0], torch.tensor([5, 9, 5]) / 255.0)


def test_load_image_mask_channels(env):
    rgba = _rgba_png(Path(env.config.input_dir) / "a.png")
    (alpha,) = LoadImageMask().run(ctx(env), "a.png", "alpha")
    np.testing.assert_allclose(alpha[0].numpy(), 1 - rgba[..., 3] / 255.0, atol=1e-7)
    (green,) = LoadImageMask().run(ctx(env), "a.png", "green")
    np.testing.assert_array_equal(green[0].numpy(), rgba[..., 1] / np.float32(255))
    Image.new("RGB", (2, 2), (9, 9, 9)).save(Path(env.config.input_dir) / "rgb.png")
    (alpha,) = LoadImageMask().run(ctx(env), "rgb.png", "alpha")
    assert torch.equal(alpha, torch.zeros(1, 2, 2))  # opaque: nothing masked
    assert "not found" in LoadImageMask.check(env, {"image": "nope.png", "channel": "red"})["image"]


def test_prompt_with_upload_input_validates_and_mask_links(env):
    Image.new("RGBA", (4, 4)).save(Path(env.config.input_dir) / "x.png")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png", "upload": "image"}},
              "2": {"class_type": "GrowMask", "inputs": {"mask": ["1", 1], "expand": 2, "tapered_corners": True}},
              "3": {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["1", 0], "alpha": ["2", 0]}},
              "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "ComfyUI"}}}
    result = validate_prompt(prompt, NODES, env)
    assert result.ok and not result.node_errors, (result.error, result.node_errors)
    assert result.outputs == ["4"]


def test_object_info_entries_are_comfyuis(env):
    info = node_info("LoadImage", NODES["LoadImage"], env)
    assert (info["output"], info["output_name"], info["category"]) == (["IMAGE", "MASK"], ["IMAGE", "MASK"], "image")
    save = node_info("SaveImage", NODES["SaveImage"], env)
    assert save["input"]["required"]["filename_prefix"][1]["default"] == "ComfyUI" and save["category"] == "image"
    grow = node_info("GrowMask", NODES["GrowMask"], env)
    assert grow["input"]["required"] == {
        "mask": ["MASK"], "expand": ["INT", {"default": 0, "min": -16384, "max": 16384, "step": 1}],
        "tapered_corners": ["BOOLEAN", {"default": True}]}
    mask = node_info("LoadImageMask", NODES["LoadImageMask"], env)
    assert mask["input"]["required"]["channel"][0] == ["alpha", "red", "green", "blue"]
    assert (mask["output"], mask["category"]) == (["MASK"], "mask")
    solid = node_info("SolidMask", NODES["SolidMask"], env)
    assert solid["input_order"]["required"] == ["value", "width", "height"]
    assert solid["input"]["required"]["value"][1]["default"] == 1.0
