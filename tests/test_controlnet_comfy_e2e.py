"""ComfyUI's super-resolution ControlNet path end to end on the --demo weights, through the server, as ComfyUI's
editor exports it: StableCascade_SuperResolutionControlnet → ControlNetApplyAdvanced → KSampler (C, B) → VAEDecode.
The output is twice the input; strength 0 equals no ControlNet bit for bit; strength 1 changes the image."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from PIL import Image

from nodes.registry import NODES
from runtime.env import Env
from tests.server_harness import running_server
from tests.test_comfy_examples_e2e import run_prompt, saved_images

ROOT = Path(__file__).resolve().parent.parent
SIZE = 128  # the input; the result is 2x


def prompt(strength: float | None) -> dict:
    """The super-resolution graph; strength None leaves the ControlNet out (KSampler reads the raw prompts)."""
    p = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "stable_cascade_stage_c.safetensors"}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "stable_cascade_stage_b.safetensors"}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "example.png", "upload": "image"}},
        "4": {"class_type": "StableCascade_SuperResolutionControlnet", "inputs": {"image": ["3", 0], "vae": ["1", 2]}},
        "5": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "demo_super_resolution.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a sharp photo", "clip": ["1", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "8": {"class_type": "ControlNetApplyAdvanced",
              "inputs": {"positive": ["6", 0], "negative": ["7", 0], "control_net": ["5", 0], "image": ["4", 0],
                         "strength": strength, "start_percent": 0.0, "end_percent": 1.0}},
        "9": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 3, "steps": 3, "cfg": 4.0,
                                                   "sampler_name": "euler_ancestral", "scheduler": "simple",
                                                   "positive": ["8", 0], "negative": ["8", 1],
                                                   "latent_image": ["4", 1], "denoise": 1.0}},
        "10": {"class_type": "StableCascade_StageB_Conditioning", "inputs": {"conditioning": ["6", 0], "stage_c": ["9", 0]}},
        "11": {"class_type": "KSampler", "inputs": {"model": ["2", 0], "seed": 4, "steps": 2, "cfg": 1.1,
                                                    "sampler_name": "euler_ancestral", "scheduler": "simple",
                                                    "positive": ["10", 0], "negative": ["7", 0],
                                                    "latent_image": ["4", 2], "denoise": 1.0}},
        "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["2", 2]}},
        "13": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sr", "images": ["12", 0]}},
    }
    if strength is None:
        del p["5"], p["8"]
        p["9"]["inputs"].update(positive=["6", 0], negative=["7", 0])
    return p


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from tests.nodes_helpers import tmp_config

    config = tmp_config(tmp_path_factory.mktemp("sr"), demo=True, web_dir=ROOT / "web")
    env = Env(config)
    Image.radial_gradient("L").resize((SIZE, SIZE)).convert("RGB").save(Path(config.input_dir) / "example.png")
    with running_server(config, NODES, env) as base:
        yield base


def run(base: str, strength: float | None) -> Image.Image:
    (image,) = saved_images(base, run_prompt(base, copy.deepcopy(prompt(strength))))
    return image


def test_super_resolution_doubles_the_size_and_strength_zero_is_no_controlnet(demo):
    plain, zero, full = run(demo, None), run(demo, 0.0), run(demo, 1.0)
    assert plain.size == zero.size == full.size == (2 * SIZE, 2 * SIZE)
    assert list(zero.getdata()) == list(plain.getdata())  # bit for bit
    assert list(full.getdata()) != list(plain.getdata())  # the ControlNet steered Stage C
