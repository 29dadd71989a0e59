"""ComfyUI's own Stable Cascade examples run here unchanged (issue 11, Done when).

The weights folder is laid out as a ComfyUI user's: the all-in-one `checkpoints/stable_cascade_stage_c|b.safetensors`
written from tiny random networks with ComfyUI's real prefixes and its split q/k/v. The API prompts go through
`POST /prompt` as published; the editor files go through `POST /prompt` (converted server-side) and through the
editor in Chromium (dropped, queued, the image appears). A ComfyUI-style websocket client runs one of them.
"""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from nodes.registry import NODES
from runtime.env import Env
from tests.comfy_folders_helpers import stage_b_all_in_one, stage_c_all_in_one, tiny_models
from tests.loading_helpers import save
from tests.server_harness import http, http_json, make_config, run_prompt, running_server
from tests.test_server_comfy_client import run_example_client

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
EXAMPLES = ("stable_cascade__text_to_image", "stable_cascade__image_to_image")
SIZE = 1024  # both examples ask for 1024x1024 (image_to_image: the input image's size over compression 32)


def example(name: str, kind: str) -> dict:
    return json.loads((DATA / f"{name}{'.prompt' if kind == 'api' else ''}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def comfy_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("comfy_e2e")
    config = make_config(tmp, web_dir=ROOT / "web", demo=False)
    models = tiny_models()
    weights = Path(config.weights_dir)
    save(weights / "checkpoints" / "stable_cascade_stage_c.safetensors", stage_c_all_in_one(models))
    save(weights / "checkpoints" / "stable_cascade_stage_b.safetensors", stage_b_all_in_one(models))
    Path(config.input_dir).mkdir(parents=True, exist_ok=True)
    # image_to_image's LoadImage names `example.png`: a 1024x1024 gradient with some structure.
    Image.radial_gradient("L").resize((SIZE, SIZE)).convert("RGB").save(Path(config.input_dir) / "example.png")
    expose: dict = {}
    with running_server(config, NODES, Env(config), expose) as base:
        yield {"base": base, "output": Path(config.output_dir), "config": config}


def run_ok(base: str, prompt: dict, timeout: float = 240) -> dict:
    entry = run_prompt(base, prompt, timeout)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry


def saved_images(base: str, entry: dict) -> list[Image.Image]:
    out = []
    for node_output in entry["outputs"].values():
        for ref in node_output.get("images", []):
            q = f"filename={ref['filename']}&subfolder={ref['subfolder']}&type={ref['type']}"
            status, _, data = http("GET", f"{base}/view?{q}")
            assert status == 200
            out.append(Image.open(io.BytesIO(data)))
    return out


@pytest.mark.parametrize("name", EXAMPLES)
def test_api_prompt_runs_unchanged(comfy_server, name):
    prompt = example(name, "api")
    entry = run_ok(comfy_server["base"], copy.deepcopy(prompt))
    (image,) = saved_images(comfy_server["base"], entry)
    assert image.size == (SIZE, SIZE)
    # ComfyUI's PNG chunk: the prompt as run (its nodes' class_type and inputs; ComfyUI's editor-only
    # `is_changed` hash is not kept).
    assert json.loads(image.info["prompt"]) == {
        nid: {"class_type": n["class_type"], "inputs": n["inputs"]} for nid, n in prompt.items()}
    assert image.getextrema() != ((0, 0), (0, 0), (0, 0))  # the tiny random networks drew something


def test_editor_json_runs_through_post_prompt_like_its_api_prompt(comfy_server):
    name = EXAMPLES[0]
    base = comfy_server["base"]
    wf = example(name, "ui")
    api = example(name, "api")
    # Seeds are `randomize` in the editor file; the converted prompt runs what the file says.
    entry = run_ok(base, wf)
    (from_editor,) = saved_images(base, entry)
    entry = run_ok(base, api)
    (from_api,) = saved_images(base, entry)
    status, converted = http_json("POST", base + "/workflow/convert", {"workflow": wf})
    assert status == 200
    # The editor file converts to exactly the published API prompt (seeds included), so both runs draw the
    # same image, pixel for pixel.
    assert {nid: n["inputs"] for nid, n in converted["prompt"].items()} == {
        nid: n["inputs"] for nid, n in api.items()}
    assert from_editor.size == from_api.size == (SIZE, SIZE)
    assert list(from_editor.getdata()) == list(from_api.getdata())


def test_comfyui_websocket_example_client_runs_a_comfy_prompt(comfy_server):
    prompt = example(EXAMPLES[0], "api")
    prompt["3"]["inputs"]["steps"] = 4
    prompt["33"]["inputs"]["steps"] = 2
    images = run_example_client(comfy_server["base"].replace("http://", ""), prompt)
    assert list(images) == ["9"] and len(images["9"]) == 1
    assert Image.open(io.BytesIO(images["9"][0])).size == (SIZE, SIZE)


@pytest.mark.slow
@pytest.mark.browser
def test_editor_drop_queue_and_the_image_appears(comfy_server):
    from playwright.sync_api import sync_playwright

    from tests.web_helpers import CHROMIUM, CHROMIUM_ARGS, document, drop_file, open_editor, skip_without_chromium

    skip_without_chromium()
    wf = example(EXAMPLES[0], "ui")
    for node in wf["nodes"]:  # a few steps keep the browser test short; layout and classes stay as published
        if node["type"] == "KSampler":
            node["widgets_values"][2] = 3
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = open_editor(browser, comfy_server["base"], {"version": 1, "nodes": {}, "ui": {"notes": []}})
            drop_file(page, "stable_cascade.json", json.dumps(wf).encode(), "application/json")
            runnable = [n for n in wf["nodes"] if n["type"] not in ("Note", "MarkdownNote")]
            page.wait_for_function(f"() => Object.keys(cascade.editor.document().nodes).length === {len(runnable)}")
            doc = document(page)
            for n in runnable:  # every ComfyUI class is known now: nothing drawn as missing
                assert doc["nodes"][str(n["id"])]["ui"]["pos"] == n["pos"]
                if n.get("title"):
                    assert doc["nodes"][str(n["id"])]["ui"]["title"] == n["title"]
            assert page.locator(".node.missing").count() == 0
            assert [g["title"] for g in doc["ui"]["groups"]] == [g["title"] for g in wf["groups"]]
            page.locator("#queue-btn").click()
            result = page.locator('.node[data-node-id="9"] .node-images img.result')
            result.wait_for(timeout=240_000)
            page.wait_for_function(
                "() => document.querySelector('.node[data-node-id=\"9\"] img.result').naturalWidth === 1024",
                timeout=30_000)
            assert page.errors == []
        finally:
            browser.close()


def test_examples_run_on_the_demo_weights(tmp_path):
    """`--demo` writes tiny all-in-one files under ComfyUI's names, so its examples run out of the box."""
    from tests.nodes_helpers import tmp_config

    config = tmp_config(tmp_path, demo=True, web_dir=ROOT / "web")
    env = Env(config)  # demo mode writes ours and ComfyUI's demo files
    Image.radial_gradient("L").resize((256, 256)).convert("RGB").save(Path(config.input_dir) / "example.png")
    with running_server(config, NODES, env) as base:
        for name in EXAMPLES:
            prompt = example(name, "api")
            for node in prompt.values():  # a small size keeps it quick; the classes and links are as published
                if node["class_type"] == "StableCascade_EmptyLatentImage":
                    node["inputs"].update(width=256, height=256)
                if node["class_type"] == "KSampler":
                    node["inputs"]["steps"] = 2
            (image,) = saved_images(base, run_ok(base, prompt))
            assert image.size == (256, 256), name
