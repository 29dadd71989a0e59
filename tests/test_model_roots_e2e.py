"""Workflows end to end (validated, then run through the server) on weights that live only in the user's
existing folders: a ComfyUI install (--comfy-models), an extra_model_paths.yaml and the Hugging Face cache.
Nothing is in our weights folder and nothing is copied there."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from engine.workflow import document_to_prompt
from nodes.registry import NODES
from runtime.env import Env
from runtime.workflows import load_default
from tests.comfy_folders_helpers import stage_b_all_in_one, stage_c_all_in_one, tiny_models
from tests.loading_helpers import file_state, save, write_diffusers
from tests.server_harness import http_json, make_config, running_server
from tests.test_comfy_examples_e2e import example, run_prompt, saved_images
from tests.test_hf_cache import DECODER, PRIOR, cache_repo

SIZE = 256


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roots_e2e")
    models = tiny_models()
    install = tmp / "ComfyUI" / "models"
    save(install / "checkpoints" / "stable_cascade_stage_c.safetensors", stage_c_all_in_one(models))
    save(install / "checkpoints" / "stable_cascade_stage_b.safetensors", stage_b_all_in_one(models))
    save(tmp / "store" / "te" / "clip_g.safetensors", file_state("text_encoder", models["text_encoder"]))
    yaml_file = tmp / "extra_model_paths.yaml"
    yaml_file.write_text("mine:\n    base_path: store\n    clip: |\n        te\n        more_te\n")
    prior, decoder = tmp / "trees" / "prior", tmp / "trees" / "decoder"
    write_diffusers(prior / "prior", "stage_c", models["stage_c"], variant="bf16", dtype=torch.bfloat16)
    write_diffusers(decoder / "decoder", "stage_b", models["stage_b"])
    write_diffusers(decoder / "vqgan", "stage_a", models["stage_a"])
    save(decoder / "previewer.safetensors", file_state("previewer", models["previewer"]))
    cache_repo(tmp / "hub", PRIOR, "1" * 40, prior)
    cache_repo(tmp / "hub", DECODER, "2" * 40, decoder)
    config = make_config(tmp, demo=False, comfy_models=(install,), extra_model_paths=(yaml_file,),
                         hf_cache_dir=tmp / "hub")
    with running_server(config, NODES, Env(config)) as base:
        yield base, Path(config.weights_dir)


def test_comfyui_example_runs_from_the_comfyui_install(server):
    base, weights = server
    # ComfyUI clients list the folder as its loader does.
    assert http_json("GET", base + "/models/checkpoints")[1] == [
        "stable_cascade_stage_b.safetensors", "stable_cascade_stage_c.safetensors"]
    prompt = copy.deepcopy(example("stable_cascade__text_to_image", "api"))
    for node in prompt.values():
        if node["class_type"] == "StableCascade_EmptyLatentImage":
            node["inputs"].update(width=SIZE, height=SIZE)
        if node["class_type"] == "KSampler":
            node["inputs"]["steps"] = 2
    (image,) = saved_images(base, run_prompt(base, prompt))
    assert image.size == (SIZE, SIZE) and image.getextrema() != ((0, 0), (0, 0), (0, 0))
    assert not any(weights.rglob("*.safetensors"))


def our_default(files: dict[str, str]) -> dict:
    doc = load_default()
    for node in doc["nodes"].values():
        if node["class_type"] in files:
            node["inputs"]["file"] = files[node["class_type"]]
        if node["class_type"] == "StageCSampler":
            node["inputs"].update(width=SIZE, height=SIZE, steps=2)
        if node["class_type"] == "StageBSampler":
            node["inputs"]["steps"] = 2
    return document_to_prompt(doc, NODES)


FILES = {"LoadTextEncoder": "text_encoders/clip_g.safetensors",  # the yaml's folder
         "LoadStageC": f"hf:{PRIOR}/prior", "LoadPreviewer": f"hf:{DECODER}/previewer.safetensors",
         "LoadStageB": f"hf:{DECODER}/decoder", "LoadStageA": f"hf:{DECODER}/vqgan"}


def test_our_loaders_run_from_the_yaml_folder_and_the_hub_cache(server):
    base, weights = server
    (image,) = saved_images(base, run_prompt(base, our_default(FILES)))
    assert image.size == (SIZE, SIZE) and image.getextrema() != ((0, 0), (0, 0), (0, 0))
    assert not any(weights.rglob("*.safetensors"))


# Each name would reach a real file were its `..` followed.
TRICKS = [("LoadStageC", f"hf:{PRIOR}/../prior"),
          ("LoadTextEncoder", "text_encoders/../../ComfyUI/models/checkpoints/stable_cascade_stage_c.safetensors")]


@pytest.mark.parametrize("node,name", TRICKS)
def test_validation_refuses_a_name_leading_out(server, node, name):
    base, _ = server
    status, body = http_json("POST", base + "/prompt", {"prompt": our_default({**FILES, node: name})})
    assert status == 400, body
    (errors,) = [e for e in body["node_errors"].values() if e["class_type"] == node]
    assert "file" in str(errors["errors"]), errors
