"""The shared ComfyUI examples converted; hostile files; the /prompt and /workflow/convert routes."""
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.comfy_workflow import ConvertError, convert
from engine.workflow import document_to_prompt
from tests.comfy_editor_files import node, workflow
from tests.comfy_stub_classes import COMFY_STUBS as REG
from tests.server_harness import http_json, stub_server

DATA = Path(__file__).parent / "data"
EXAMPLES = ["text_to_image", "image_to_image"]


def example(name):
    return (json.loads((DATA / f"stable_cascade__{name}.json").read_text()),
            json.loads((DATA / f"stable_cascade__{name}.prompt.json").read_text()))


@pytest.mark.parametrize("name", EXAMPLES)
def test_shared_example_converts_to_its_api_prompt(name):
    wf, expected = example(name)
    out = convert(wf, REG)
    prompt = document_to_prompt(out.document, REG)
    assert out.missing_classes == []
    assert sorted(prompt) == sorted(expected)
    for node_id, want in expected.items():
        inputs = dict(want["inputs"])
        if want["class_type"] == "LoadImage":
            # The old frontend's upload-button value; ComfyUI's server ignores it (spec §3.1).
            assert inputs.pop("upload") == "image"
        assert prompt[node_id]["class_type"] == want["class_type"], node_id
        assert prompt[node_id]["inputs"] == inputs, node_id
        assert prompt[node_id]["_meta"]["title"]
    titles = {k: v["_meta"]["title"] for k, v in prompt.items()}
    assert titles["6"] == "CLIP Text Encode (Positive Prompt)"
    assert [g["title"] for g in out.document["ui"]["groups"]] == ["Stage B", "Stage C"]
    assert out.document["nodes"]["3"]["ui"]["pos"] == [552, 293]


def test_unknown_classes_of_an_example_are_named():
    wf, _ = example("text_to_image")
    out = convert(wf, {})
    assert sorted(out.missing_classes) == sorted({
        "VAEDecode", "CheckpointLoaderSimple", "SaveImage", "KSampler",
        "StableCascade_EmptyLatentImage", "CLIPTextEncode", "StableCascade_StageB_Conditioning"})
    assert out.document["nodes"]["3"]["inputs"]["model"] == ["41", 0]  # links survive


@pytest.mark.parametrize("bad, words", [
    ({"nodes": [1], "links": []}, "nodes[0] must be an object"),
    ({"nodes": [{"id": 1}], "links": []}, "'type' must be a string"),
    ({"nodes": [{"id": [1], "type": "X"}], "links": []}, "node id"),
    ({"nodes": [], "links": {}}, "'links' must be a list"),
    ({"nodes": [], "links": [[1, 2]]}, "link #0"),
    ({"nodes": [], "links": [[1, 2, -1, 3, 0, "X"]]}, "slot"),
    ({"nodes": [{"id": 1, "type": "X"}, {"id": 1, "type": "X"}], "links": []}, "twice"),
    ({"nodes": [], "links": [], "groups": [{"bounding": "x"}]}, "bounding"),
    ({"nodes": [{"id": 1, "type": "X", "inputs": "no"}], "links": []}, "'inputs' must be a list"),
])
def test_malformed_files_raise_convert_error_naming_the_place(bad, words):
    with pytest.raises(ConvertError, match=re.escape(words)):
        convert(bad, REG)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutation_of_an_example_converts_or_raises_convert_error(data):
    wf, _ = example("image_to_image")
    target = data.draw(st.sampled_from(["top", "node", "link"]))
    value = data.draw(json_values)
    if target == "top":
        wf[data.draw(st.sampled_from(["links", "groups", "extra", "definitions"]))] = value
    elif target == "node":
        n = data.draw(st.sampled_from(wf["nodes"]))
        n[data.draw(st.sampled_from(["id", "type", "mode", "inputs", "outputs", "widgets_values",
                                     "pos", "size", "title"]))] = value
    else:
        link = data.draw(st.sampled_from(wf["links"]))
        link[data.draw(st.integers(0, 5))] = value
    try:
        out = convert(wf, REG)
    except ConvertError:
        return
    json.dumps(document_to_prompt(out.document, REG))


STUB_FILE = workflow([node(1, "Const", [21]), node(2, "Reroute", None, [("", "*")], [("", "NUMBER")]),
                      node(3, "Show", None, [("x", "NUMBER")], title="Shown"),
                      node(4, "Note", ["hello"])],
                     [[1, 1, 0, 2, 0, "NUMBER"], [2, 2, 0, 3, 0, "NUMBER"]])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with stub_server(tmp_path_factory.mktemp("comfywf")) as (base, env, config):
        yield base, env


def test_post_prompt_runs_an_editor_workflow(server):
    base, env = server
    status, body = http_json("POST", base + "/prompt?wait=1", {"prompt": STUB_FILE})
    assert status == 200 and body["state"] == "done", body
    assert body["outputs"]["3"]["text"] == ["21"]
    stored = body["prompt"][2]
    assert stored["3"]["inputs"] == {"x": ["1", 0]} and stored["3"]["_meta"] == {"title": "Shown"}
    assert body["prompt"][3]["extra_pnginfo"]["workflow"]["ui"]["notes"][0]["text"] == "hello"


def test_workflow_convert_route(server):
    base, _ = server
    for path in ("/workflow/convert", "/api/workflow/convert"):
        status, body = http_json("POST", base + path, {"workflow": STUB_FILE})
        assert status == 200, body
        assert body["prompt"] == {"1": {"class_type": "Const", "inputs": {"value": 21},
                                        "_meta": {"title": "Const"}},
                                  "3": {"class_type": "Show", "inputs": {"x": ["1", 0]},
                                        "_meta": {"title": "Shown"}}}
        assert body["missing_classes"] == [] and set(body["document"]["nodes"]) == {"1", "3"}
    status, body = http_json("POST", base + "/workflow/convert",
                             workflow([node(1, "KSampler", [1, "fixed"])], []))
    assert status == 200 and body["missing_classes"] == ["KSampler"]


@pytest.mark.parametrize("payload, words", [
    ({"workflow": {"nodes": [1], "links": []}}, "nodes[0]"),
    ({"workflow": {"version": 1}}, "ComfyUI editor workflow"),
    ({"workflow": [1]}, "ComfyUI editor workflow"),
])
def test_workflow_convert_bad_input_is_400(server, payload, words):
    status, body = http_json("POST", server[0] + "/workflow/convert", payload)
    assert status == 400 and words in body["error"]["message"], body


def test_post_prompt_bad_or_unknown_editor_workflow_is_400(server):
    base, _ = server
    status, body = http_json("POST", base + "/prompt", {"prompt": {"nodes": [{"id": 1}], "links": []}})
    assert status == 400 and "'type' must be a string" in body["error"]["message"], body
    status, body = http_json("POST", base + "/prompt",
                             {"prompt": workflow([node(1, "KSampler", [1, "fixed"])], [])})
    assert status == 400 and "KSampler" in body["error"]["message"], body
