"""Image I/O nodes and the weights-folder guidance (no models needed)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.schema import RunContext
from runtime.env import Env
from nodes.images import LoadImage, PreviewImage, SaveImage
from nodes.loaders import LoadStageC
from tests.nodes_helpers import tmp_config


@pytest.fixture
def env(tmp_path):
    return Env(tmp_config(tmp_path, demo=False))


def ctx(env, **kw):
    return RunContext(node_id="9", prompt_id="p", env=env, cancel=threading.Event(), **kw)


def test_save_image_counter_subfolder_and_text_chunks(env):
    prompt = {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
    workflow = {"version": 1, "nodes": {}, "ui": {"notes": [{"text": "é ü"}]}}
    images = torch.rand(2, 16, 24, 3)
    res = SaveImage().run(ctx(env, prompt=prompt, extra_pnginfo={"workflow": workflow}), images, "sub/dir/pic")
    names = [i["filename"] for i in res.ui["images"]]
    assert names == ["pic_00001_.png", "pic_00002_.png"]
    assert {i["subfolder"] for i in res.ui["images"]} == {"sub/dir"} and res.ui["images"][0]["type"] == "output"
    path = Path(env.config.output_dir) / "sub/dir/pic_00002_.png"
    with Image.open(path) as img:
        assert img.size == (24, 16)
        assert json.loads(img.text["prompt"]) == prompt
        assert json.loads(img.text["workflow"]) == workflow
        assert torch.equal(torch.from_numpy(__import__("numpy").array(img)),
                           (images[1].clamp(0, 1) * 255).round().to(torch.uint8))
    res2 = SaveImage().run(ctx(env), images[:1], "sub/dir/pic")
    assert res2.ui["images"][0]["filename"] == "pic_00003_.png"


@pytest.mark.parametrize("prefix", ["../escape", "/etc/x", "a/../../b", "%width%/../../x"])
def test_save_image_prefix_cannot_escape_output(env, prefix):
    with pytest.raises(ValueError, match="inside the output folder"):
        SaveImage().run(ctx(env), torch.rand(1, 8, 8, 3), prefix)


def test_save_image_expands_size_and_preview_goes_to_temp(env):
    res = SaveImage().run(ctx(env), torch.rand(1, 8, 12, 3), "img_%width%x%height%")
    assert res.ui["images"][0]["filename"] == "img_12x8_00001_.png"
    prev = PreviewImage().run(ctx(env), torch.rand(1, 8, 8, 3))
    item = prev.ui["images"][0]
    assert item["type"] == "temp" and (Path(env.config.temp_dir) / item["filename"]).is_file()


def test_load_image_check_fingerprint_and_pixels(env):
    root = Path(env.config.input_dir)
    (root / "nested").mkdir()
    Image.new("RGB", (5, 3), (255, 0, 0)).save(root / "nested" / "red.png")
    assert LoadImage.check(env, {"image": "nested/red.png"}) == {}
    assert "not found" in LoadImage.check(env, {"image": "nope.png"})["image"]
    assert "outside" in LoadImage.check(env, {"image": "../user/x.png"})["image"]
    assert "nested/red.png" in LoadImage.INPUTS[0].choice_list(env)
    fp1 = LoadImage.fingerprint(env, {"image": "nested/red.png"})
    Image.new("RGB", (5, 3), (0, 0, 255)).save(root / "nested" / "red.png")
    assert LoadImage.fingerprint(env, {"image": "nested/red.png"}) != fp1  # content, not name
    img, mask = LoadImage().run(ctx(env), "nested/red.png")
    assert img.shape == (1, 3, 5, 3) and img[0, 0, 0].tolist() == [0.0, 0.0, 1.0]
    assert torch.equal(mask, torch.zeros(1, 64, 64))  # no alpha: ComfyUI's 64×64 placeholder


def test_missing_weights_guidance_names_files_and_sizes(env):
    msg = LoadStageC.check(env, {"file": "stage_c_bf16.safetensors"})["file"]
    assert "stage_c_bf16.safetensors" in msg and "7.2 GB" in msg and "stage_c" in msg
    report = env.weights_report()
    for name in ("stage_c_bf16.safetensors", "stage_b_bf16.safetensors", "stage_a.safetensors",
                 "model.bf16.safetensors", "previewer.safetensors"):
        assert name in report
    folder = Path(env.config.weights_dir) / "stage_c"
    folder.mkdir(parents=True)
    # A real (tiny) Stage C: a file counts by its keys, never its name (tests/test_startup_report.py: junk does not).
    from tests.loading_helpers import file_state, save, tiny_model
    save(folder / "stage_c_lite_bf16.safetensors", file_state("stage_c", tiny_model("stage_c")))
    assert LoadStageC.check(env, {"file": "stage_c_lite_bf16.safetensors"}) == {}
    assert env.weight_files("stage_c") == ["stage_c_lite_bf16.safetensors"]
    assert "stage_c_bf16.safetensors" not in env.weights_report()  # that kind is satisfied now
    assert env.weight_path("stage_c", "../stage_b/x.safetensors") is None


def test_shipped_default_workflow_has_the_official_settings():
    from nodes.registry import NODES
    from runtime.workflows import load_default

    doc = load_default()
    by_type = {n["class_type"]: n for n in doc["nodes"].values()}
    assert set(by_type) <= set(NODES) and doc["version"] == 1
    c, b = by_type["StageCSampler"]["inputs"], by_type["StageBSampler"]["inputs"]
    assert (c["steps"], c["cfg"], c["shift"], c["width"], c["height"]) == (20, 4.0, 2.0, 1024, 1024)
    assert (b["steps"], b["cfg"], b["shift"]) == (10, 1.1, 1.0)
    assert c["sampler"] == b["sampler"] == "ddpm" and c["cfg_rho"] == b["cfg_rho"] == 0.7
    xs = [by_type[t]["ui"]["pos"][0] for t in ("LoadStageC", "TextEncode", "StageCSampler", "StageBSampler",
                                               "StageADecode", "SaveImage")]
    assert xs == sorted(xs)  # reads left to right
