"""End to end through the real server: the default workflow with a LoRA node on the demo weights."""
from __future__ import annotations

import copy
import io
import urllib.parse

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from nodes.registry import NODES
from tests.lora_helpers import factors, save
from tests.nodes_helpers import demo_env, node_id, small_default, tmp_config
from tests.server_harness import http, http_json, running_server

DEMO_LORA = "demo_stage_c_lora.safetensors"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    config = tmp_config(tmp_path_factory.mktemp("lora_e2e"))
    env = demo_env(config)
    up, down = factors(320, (320,), 2, seed=1)
    save(env.weights_dir / "loras" / "sd15_style.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": up,
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": down})
    demo = load_file(str(env.weight_path("loras", DEMO_LORA)))
    save(env.weights_dir / "loras" / "partial.safetensors",
         {**demo, "lora_prior_unet_no_such_layer.alpha": torch.tensor(1.0)})
    with running_server(config, NODES, env) as base:
        yield base, env


def with_lora(doc: dict, lora: str, strength_model: float = 1.0, strength_text: float = 1.0) -> dict:
    """The document with a LoRA node between the loaders and their consumers (Stage C and both prompts)."""
    doc = copy.deepcopy(doc)
    c_loader, te_loader = node_id(doc, "LoadStageC"), node_id(doc, "LoadTextEncoder")
    lora_id = str(max(int(i) for i in doc["nodes"]) + 1)
    for node in doc["nodes"].values():
        for name, value in node["inputs"].items():
            if value == [c_loader, 0]:
                node["inputs"][name] = [lora_id, 0]
            elif value == [te_loader, 0]:
                node["inputs"][name] = [lora_id, 1]
    doc["nodes"][lora_id] = {"class_type": "LoRA", "ui": {"pos": [0, 0]}, "inputs": {
        "stage_c": [c_loader, 0], "text_encoder": [te_loader, 0], "lora_name": lora,
        "strength_model": strength_model, "strength_text": strength_text}}
    return doc


def run(base: str, doc: dict) -> tuple[dict, np.ndarray | None]:
    """Submit and wait; return (history entry, saved image as an array or None)."""
    status, body = http_json("POST", base + "/prompt?wait=true", {"prompt": doc}, timeout=180)
    assert status == 200, body
    _, history = http_json("GET", f"{base}/history/{body['prompt_id']}")
    entry = history[body["prompt_id"]]
    images = entry["outputs"].get(node_id(doc, "SaveImage"), {}).get("images")
    if not images:
        return entry, None
    status, _, raw = http("GET", f"{base}/view?{urllib.parse.urlencode(images[0])}")
    assert status == 200
    return entry, np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def stage_c_weights(env, doc):
    module = env.load_model("stage_c", doc["nodes"][node_id(doc, "LoadStageC")]["inputs"]["file"])
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_lora_in_default_workflow_changes_image_and_zero_or_removal_restores(app):
    base, env = app
    doc = small_default(env, steps_c=2, steps_b=1)
    assert DEMO_LORA in env.weight_files("loras")
    entry, plain = run(base, doc)
    assert entry["status"]["status_str"] == "success"
    before = stage_c_weights(env, doc)

    lora_doc = with_lora(doc, DEMO_LORA, 1.0, 1.0)
    entry, patched = run(base, lora_doc)
    assert entry["status"]["status_str"] == "success", entry["status"]
    text = entry["outputs"][str(max(int(i) for i in lora_doc["nodes"]))]["text"][0]
    assert DEMO_LORA in text and "stage_c:" in text and " 0 not applied" in text
    assert not np.array_equal(plain, patched)
    after = stage_c_weights(env, doc)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the resident model is untouched

    entry, zero = run(base, with_lora(doc, DEMO_LORA, 0.0, 0.0))
    assert np.array_equal(zero, plain)  # strength 0 (after a strength-1 run) = no LoRA, bit for bit
    removed = copy.deepcopy(doc)
    removed["nodes"][node_id(doc, "StageCSampler")]["inputs"]["seed"] = 77
    _, again = run(base, removed)
    entry, again_lora0 = run(base, with_lora(removed, DEMO_LORA, 0.0, 0.0))
    assert np.array_equal(again, again_lora0)


def test_foreign_lora_fails_the_job_with_a_clear_message(app):
    base, env = app
    doc = with_lora(small_default(env, steps_c=1, steps_b=1), "sd15_style.safetensors")
    # Refused before it runs: the LoRA node lists only LoRAs for its model, and its check says why (catalogue).
    status, body = http_json("POST", base + "/prompt", {"prompt": doc})
    assert status == 400 and "different model" in str(body) and "SD1.5" in str(body)
    assert "sd15_style.safetensors" not in env.lora_files("stage_c")


def test_unmatched_keys_reach_the_jobs_warnings(app):
    base, env = app
    doc = with_lora(small_default(env, steps_c=1, steps_b=1), "partial.safetensors", 0.5, 0.5)
    entry, image = run(base, doc)
    assert image is not None and entry["status"]["status_str"] == "success"
    (warning,) = entry["warnings"]
    assert warning["node_type"] == "LoRA" and "lora_prior_unet_no_such_layer.alpha" in warning["message"]
