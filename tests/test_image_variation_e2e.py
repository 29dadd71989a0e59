"""Image variation end to end on the --demo weights, through the server: our nodes (the shipped example workflow)
and ComfyUI's classes, one and two images; the clip_img reaching Stage C is checked against the formula."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.loading import load
from models.stage_c import StageC
from nodes.registry import NODES
from runtime.env import Env
from runtime.workflows import fit_to_weights
from tests.server_harness import running_server
from tests.test_comfy_examples_e2e import run_prompt, saved_images

ROOT = Path(__file__).resolve().parent.parent
SIZE = 256


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from tests.nodes_helpers import tmp_config

    config = tmp_config(tmp_path_factory.mktemp("vis"), demo=True, web_dir=ROOT / "web")
    env = Env(config)
    inp = Path(config.input_dir)
    Image.radial_gradient("L").resize((300, 240)).convert("RGB").save(inp / "example.png")
    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((200, 260, 3)) * 255).astype(np.uint8)).save(inp / "second.png")
    with running_server(config, NODES, env) as base:
        yield {"base": base, "env": env, "input": inp, "weights": Path(config.weights_dir)}


@pytest.fixture
def clip_imgs(monkeypatch):
    """Every clip_img Stage C's token builder receives (after the cast to the network dtype)."""
    seen: list[torch.Tensor] = []
    original = StageC.clip_tokens

    def spy(self, clip_text, clip_text_pooled, clip_img):
        seen.append(clip_img.detach().float().clone())
        return original(self, clip_text, clip_text_pooled, clip_img)

    monkeypatch.setattr(StageC, "clip_tokens", spy)
    return seen


def image(demo, name: str) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(demo["input"] / name).convert("RGB"), np.float32) / 255.0)[None]


def expected_tokens(demo, pairs, comfy: bool) -> torch.Tensor:
    """[N, 768]: each image's embeds (the demo tower at its auto dtype, bf16) times its strength, in bf16."""
    tower = load(demo["weights"] / "clip_vision" / "demo_clip_vision_l14.safetensors", "clip_vision", dtype="bfloat16")
    rows = [(tower.encode(image(demo, n), "center")[0] if comfy else tower.encode_official(image(demo, n))) * s
            for n, s in pairs]
    return torch.cat(rows).to(torch.bfloat16).float()


def assert_clip_img(seen, want: torch.Tensor) -> None:
    """Every item Stage C saw is the positive's tokens or the negative's single zero token; both occur."""
    items = [item for t in seen for item in t]
    assert any(i.shape == want.shape and torch.equal(i, want) for i in items)
    assert any(i.shape == (1, 768) and not i.any() for i in items)
    assert all((i.shape == want.shape and torch.equal(i, want)) or (i.shape == (1, 768) and not i.any())
               for i in items)


def example_prompt(demo, images: list[tuple[str, float]] | None) -> dict:
    """web/workflows/image_variation.json fitted to the demo weights as the editor gets it, as an API prompt."""
    doc = json.loads((ROOT / "web" / "workflows" / "image_variation.json").read_text())
    doc = fit_to_weights(doc, demo["env"], NODES, demo=True)
    prompt = {nid: {"class_type": n["class_type"], "inputs": n["inputs"]} for nid, n in doc["nodes"].items()}
    prompt["8"]["inputs"].update(steps=2, width=SIZE, height=SIZE)
    prompt["9"]["inputs"]["steps"] = 2
    if images is None:
        del prompt["8"]["inputs"]["image_prompt"]
        return prompt
    prev = None
    for i, (name, strength) in enumerate(images):
        load_id, ip_id = f"13{'' if i == 0 else i}", f"14{'' if i == 0 else i}"
        prompt[load_id] = {"class_type": "LoadImage", "inputs": {"image": name}}
        prompt[ip_id] = {"class_type": "ImagePrompt", "inputs": {"clip_vision": ["12", 0], "image": [load_id, 0],
                                                                 "strength": strength}}
        if prev:
            prompt[ip_id]["inputs"]["image_prompt"] = [prev, 0]
        prev = ip_id
    prompt["8"]["inputs"]["image_prompt"] = [prev, 0]
    return prompt


def pixels(demo, prompt) -> np.ndarray:
    (img,) = saved_images(demo["base"], run_prompt(demo["base"], copy.deepcopy(prompt)))
    assert img.size == (SIZE, SIZE)
    return np.asarray(img)


def test_our_nodes_one_and_two_images(demo, clip_imgs):
    assert fit_to_weights(json.loads((ROOT / "web/workflows/image_variation.json").read_text()), demo["env"],
                          NODES, demo=True)["nodes"]["12"]["inputs"]["file"] == "demo_clip_vision_l14.safetensors"
    text_only = pixels(demo, example_prompt(demo, None))
    assert all(t.shape[1:] == (1, 768) and not t.any() for t in clip_imgs)  # today's zeros, untouched
    clip_imgs.clear()
    one = pixels(demo, example_prompt(demo, [("example.png", 1.0)]))
    assert_clip_img(clip_imgs, expected_tokens(demo, [("example.png", 1.0)], comfy=False))
    clip_imgs.clear()
    two = pixels(demo, example_prompt(demo, [("example.png", 1.0), ("second.png", 0.5)]))
    assert_clip_img(clip_imgs, expected_tokens(demo, [("example.png", 1.0), ("second.png", 0.5)], comfy=False))
    assert not np.array_equal(one, text_only) and not np.array_equal(two, one)
    # Strength 0 adds no image: bit for bit the text-only image.
    assert np.array_equal(pixels(demo, example_prompt(demo, [("example.png", 0.0)])), text_only)


def comfy_prompt(images: list[tuple[str, float]]) -> dict:
    """ComfyUI's image-variation graph as its editor exports the API prompt (unCLIPCheckpointLoader)."""
    p = {
        "30": {"class_type": "unCLIPCheckpointLoader", "inputs": {"ckpt_name": "stable_cascade_stage_c.safetensors"}},
        "31": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "stable_cascade_stage_b.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["30", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["30", 1]}},
        "34": {"class_type": "StableCascade_EmptyLatentImage",
               "inputs": {"width": SIZE, "height": SIZE, "compression": 42, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": 2, "cfg": 4.0, "sampler_name": "euler_ancestral", "scheduler": "simple",
            "denoise": 1.0, "model": ["30", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["34", 0]}},
        "36": {"class_type": "StableCascade_StageB_Conditioning", "inputs": {"conditioning": ["6", 0],
                                                                            "stage_c": ["3", 0]}},
        "33": {"class_type": "KSampler", "inputs": {
            "seed": 8, "steps": 2, "cfg": 1.1, "sampler_name": "euler_ancestral", "scheduler": "simple",
            "denoise": 1.0, "model": ["31", 0], "positive": ["36", 0], "negative": ["7", 0],
            "latent_image": ["34", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["33", 0], "vae": ["31", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
    cond = ["6", 0]
    for i, (name, strength) in enumerate(images):
        p[f"4{i}"] = {"class_type": "LoadImage", "inputs": {"image": name}}
        p[f"5{i}"] = {"class_type": "CLIPVisionEncode", "inputs": {"clip_vision": ["30", 3], "image": [f"4{i}", 0],
                                                                  "crop": "center"}}
        p[f"6{i}"] = {"class_type": "unCLIPConditioning", "inputs": {
            "conditioning": cond, "clip_vision_output": [f"5{i}", 0], "strength": strength,
            "noise_augmentation": 0.0}}
        cond = [f"6{i}", 0]
    p["3"]["inputs"]["positive"] = cond
    return p


def test_comfy_classes_one_and_two_images(demo, clip_imgs):
    text_only = pixels(demo, comfy_prompt([]))
    clip_imgs.clear()
    one = pixels(demo, comfy_prompt([("example.png", 1.0)]))
    assert_clip_img(clip_imgs, expected_tokens(demo, [("example.png", 1.0)], comfy=True))
    clip_imgs.clear()
    two = pixels(demo, comfy_prompt([("example.png", 1.0), ("second.png", 0.5)]))
    assert_clip_img(clip_imgs, expected_tokens(demo, [("example.png", 1.0), ("second.png", 0.5)], comfy=True))
    assert not np.array_equal(one, text_only) and not np.array_equal(two, one)
