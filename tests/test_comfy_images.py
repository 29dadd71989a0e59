"""ComfyUI's image classes against independent references: PIL / torch.interpolate resizes, formulas on
small hand-made images, kornia called directly for Canny, and /object_info entries written out as ComfyUI's."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.catalogue import node_info
from engine.schema import RunContext
from nodes.comfy.images import (Canny, EmptyImage, ImageCompositeMasked, ImageInvert, ImageScale, ImageScaleBy,
                                JoinImageWithAlpha, SaveImageWebsocket)
from nodes.registry import NODES


def ctx(**kw):
    return RunContext(node_id="1", prompt_id="p", env=None, cancel=threading.Event(), **kw)


@pytest.fixture
def image():
    return torch.rand(2, 12, 18, 3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic"])
def test_image_scale_torch_methods_match_interpolate(image, method):
    (out,) = ImageScale().run(ctx(), image, method, 7, 5, "disabled")
    ref = F.interpolate(image.permute(0, 3, 1, 2), size=(5, 7), mode=method).permute(0, 2, 3, 1)
    assert out.shape == (2, 5, 7, 3) and torch.equal(out, ref)


def _pil_lanczos(img: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """PIL oracle: 8-bit by truncation of 255·x (as ComfyUI), LANCZOS, back to [0,1]."""
    pil = Image.fromarray((255.0 * img.numpy()).clip(0, 255).astype(np.uint8))
    return np.asarray(pil.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def test_image_scale_lanczos_is_pils(image):
    (out,) = ImageScale().run(ctx(), image, "lanczos", 25, 16, "disabled")
    for i in range(2):
        np.testing.assert_array_equal(out[i].numpy(), _pil_lanczos(image[i], (25, 16)))


def test_image_scale_zero_side_keeps_aspect_and_center_crop(image):
    (out,) = ImageScale().run(ctx(), image, "bilinear", 0, 6, "disabled")
    assert out.shape == (2, 6, 9, 3)  # 18·6/12 = 9
    (out,) = ImageScale().run(ctx(), image, "nearest-exact", 0, 0, "center")
    assert out is image or torch.equal(out, image)
    # 18×12 → square: keep the centre 12×12 (x from round((18-12)/2) = 3), then resize
    (out,) = ImageScale().run(ctx(), image, "bilinear", 6, 6, "center")
    ref = F.interpolate(image[:, :, 3:15].permute(0, 3, 1, 2), size=(6, 6), mode="bilinear").permute(0, 2, 3, 1)
    assert torch.equal(out, ref)
    # 18×12 → 1:2 tall: keep width 6 = 18·(0.5/1.5), x = round((18-6)/2) = 6
    (out,) = ImageScale().run(ctx(), image, "area", 3, 6, "center")
    ref = F.interpolate(image[:, :, 6:12].permute(0, 3, 1, 2), size=(6, 3), mode="area").permute(0, 2, 3, 1)
    assert torch.equal(out, ref)


def test_image_scale_takes_rgba_and_scale_by_rounds(image):
    rgba = torch.cat([image, torch.rand(2, 12, 18, 1)], -1)
    (out,) = ImageScale().run(ctx(), rgba, "bicubic", 9, 6, "disabled")
    assert out.shape == (2, 6, 9, 4)
    (out,) = ImageScaleBy().run(ctx(), image, "lanczos", 1.25)
    assert out.shape == (2, 15, 22, 3)  # round(12·1.25) = 15, round(18·1.25) = 22 (banker's: 22.5 → 22)
    np.testing.assert_array_equal(out[1].numpy(), _pil_lanczos(image[1], (22, 15)))
    with pytest.raises(ValueError, match="empty"):
        ImageScaleBy().run(ctx(), image[:, :1, :1], "bilinear", 0.01)
    with pytest.raises(TypeError, match="IMAGE"):
        ImageScale().run(ctx(), torch.rand(12, 18, 3), "bilinear", 4, 4, "disabled")


def test_empty_image_colour_and_invert():
    (out,) = EmptyImage().run(ctx(), 3, 2, 2, 0x336699)
    assert out.shape == (2, 2, 3, 3)
    assert torch.equal(out[1, 1, 2], torch.tensor([0x33 / 255, 0x66 / 255, 0x99 / 255]))
    (inv,) = ImageInvert().run(ctx(), out)
    assert torch.allclose(inv[0, 0, 0], torch.tensor([1 - 0x33 / 255, 1 - 0x66 / 255, 1 - 0x99 / 255]))


def test_composite_masked_by_formula_on_4x4():
    dest = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4, 1).repeat(1, 1, 1, 3) / 16
    src = torch.full((1, 2, 3, 3), 0.9)
    mask = torch.tensor([[[1.0, 0.5, 0.0], [0.25, 1.0, 0.0]]])  # [1,2,3]: the source's size, no resize
    (out,) = ImageCompositeMasked().run(ctx(), dest, src, 2, 1, False, mask)
    expect = dest.clone()
    # source pixel (r, c) lands on (1 + r, 2 + c); columns 2..3 only (c = 2 falls outside)
    for r in range(2):
        for c in range(2):
            m = mask[0, r, c]
            expect[0, 1 + r, 2 + c] = m * 0.9 + (1 - m) * dest[0, 1 + r, 2 + c]
    assert torch.allclose(out, expect)
    # no mask: a plain paste; resize_source: the source covers the destination
    (out,) = ImageCompositeMasked().run(ctx(), dest, src, 0, 0, False, None)
    assert torch.equal(out[0, :2, :3], src[0]) and torch.equal(out[0, 2:], dest[0, 2:])
    (out,) = ImageCompositeMasked().run(ctx(), dest, src, 1, 1, True, None)
    assert torch.allclose(out[0, 1:, 1:], torch.full((3, 3, 3), 0.9)) and torch.equal(out[0, 0], dest[0, 0])


def test_composite_channel_mismatch_and_batch_repeat():
    dest = torch.zeros(3, 2, 2, 4)
    src = torch.ones(1, 2, 2, 3)
    (out,) = ImageCompositeMasked().run(ctx(), dest, src, 0, 0, False, None)
    assert out.shape == (3, 2, 2, 4) and torch.equal(out, torch.ones(3, 2, 2, 4))  # RGB source is opaque
    (out,) = ImageCompositeMasked().run(ctx(), torch.zeros(1, 2, 2, 3), torch.ones(1, 2, 2, 4), 0, 0, False, None)
    assert out.shape == (1, 2, 2, 3)


def test_join_image_with_alpha_formula():
    img = torch.rand(2, 4, 4, 3)
    mask = torch.tensor([[0.0, 1.0], [0.25, 0.5]]).unsqueeze(0)  # [1,2,2] → resized to 4×4, repeated to 2
    (out,) = JoinImageWithAlpha().run(ctx(), img, mask)
    ref_alpha = 1 - F.interpolate(mask[None], size=(4, 4), mode="bilinear")[0, 0]
    assert out.shape == (2, 4, 4, 4) and torch.equal(out[..., :3], img)
    assert torch.allclose(out[0, ..., 3], ref_alpha) and torch.allclose(out[1, ..., 3], ref_alpha)
    (out,) = JoinImageWithAlpha().run(ctx(), torch.zeros(1, 2, 2, 4), torch.ones(1, 2, 2))
    assert torch.equal(out[..., 3], torch.zeros(1, 2, 2))  # an existing alpha is replaced


def test_canny_is_kornias_edges_in_three_channels():
    from kornia.filters import canny

    img = torch.zeros(1, 16, 16, 3)
    img[:, 4:12, 4:12] = 1.0  # a white square: edges along its border
    (out,) = Canny().run(ctx(), img, 0.2, 0.5)
    _, edges = canny(img.permute(0, 3, 1, 2), 0.2, 0.5)
    assert out.shape == (1, 16, 16, 3) and out.sum() > 0
    for ch in range(3):
        assert torch.equal(out[..., ch], edges[:, 0])
    (rgba,) = Canny().run(ctx(), torch.cat([img, torch.rand(1, 16, 16, 1)], -1), 0.2, 0.5)
    assert torch.equal(rgba, out)
    with pytest.raises(ValueError, match="low_threshold"):
        Canny().run(ctx(), img, 0.9, 0.5)


def test_save_image_websocket_reports_png_images_as_progress():
    seen = []
    images = torch.rand(2, 5, 6, 3)
    res = SaveImageWebsocket().run(ctx(on_progress=lambda v, t, p: seen.append((v, t, p))), images)
    assert res.outputs == () and [(v, t, p[0], p[2]) for v, t, p in seen] == [(0, 2, "PNG", None), (1, 2, "PNG", None)]
    assert np.array_equal(np.asarray(seen[1][2][1]), (images[1] * 255).round().to(torch.uint8).numpy())
    assert SaveImageWebsocket.fingerprint(None, {}) != SaveImageWebsocket.fingerprint(None, {})  # NaN: always run


def _opts(entry):
    """Drop our catalogue's own additions (`round` = step on FLOAT) from an /object_info input entry."""
    return [entry[0]] + ([{k: v for k, v in entry[1].items() if k != "round"}] if len(entry) > 1 and entry[1] else [])


def test_object_info_entries_are_comfyuis():
    methods = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
    scale = node_info("ImageScale", NODES["ImageScale"], None)
    assert {k: _opts(v) for k, v in scale["input"]["required"].items()} == {
        "image": ["IMAGE"], "upscale_method": [methods],
        "width": ["INT", {"default": 512, "min": 0, "max": 16384, "step": 1}],
        "height": ["INT", {"default": 512, "min": 0, "max": 16384, "step": 1}],
        "crop": [["disabled", "center"]]}
    assert scale["input_order"]["required"] == ["image", "upscale_method", "width", "height", "crop"]
    assert (scale["output"], scale["output_name"], scale["category"]) == (["IMAGE"], ["IMAGE"], "image/upscaling")
    canny = node_info("Canny", NODES["Canny"], None)
    assert _opts(canny["input"]["required"]["low_threshold"]) == [
        "FLOAT", {"default": 0.4, "min": 0.01, "max": 0.99, "step": 0.01}]
    assert canny["category"] == "image/preprocessors"
    comp = node_info("ImageCompositeMasked", NODES["ImageCompositeMasked"], None)
    assert comp["input"]["optional"] == {"mask": ["MASK"]}
    assert comp["input"]["required"]["resize_source"] == ["BOOLEAN", {"default": False}]
    assert _opts(node_info("EmptyImage", NODES["EmptyImage"], None)["input"]["required"]["color"]) == [
        "INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1}]
    ws = node_info("SaveImageWebsocket", NODES["SaveImageWebsocket"], None)
    assert ws["input"]["required"] == {"images": ["IMAGE"]} and ws["output"] == [] and ws["output_node"] is True
    join = node_info("JoinImageWithAlpha", NODES["JoinImageWithAlpha"], None)
    assert join["input"]["required"] == {"image": ["IMAGE"], "alpha": ["MASK"]}
    assert join["category"] == "mask/compositing"


def test_image_file_combos_say_image_upload_as_comfyuis_do(tmp_path):
    """ComfyUI's frontend draws an upload button for a combo whose options carry image_upload: true."""
    from nodes.registry import NODES as ALL

    class Env:
        input_dir = tmp_path

    for name in ("LoadImage", "LoadImageMask"):
        entry = node_info(name, ALL[name], Env())["input"]["required"]["image"]
        assert entry[1].get("image_upload") is True, name
