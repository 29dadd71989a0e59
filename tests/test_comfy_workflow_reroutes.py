"""ComfyUI imports keep reroutes (legacy nodes, native 0.4 and v1) as our reroute points, and keep
bypassed/muted nodes as nodes with ``ui.mode`` while the API prompt stays what ComfyUI runs."""
import pytest

from engine.comfy_workflow import convert
from engine.schema import INT, Input, Node, Output
from engine.workflow import document_to_prompt
from tests.comfy_editor_files import CKPT, COND, KS_IN, node, workflow
from tests.comfy_stub_classes import COMFY_STUBS
from tests.server_harness import http_json, stub_server

KS_VALUES = [7, "increment", 25, 4.5, "euler", "normal", 0.5]
CLIP_IN = [("clip", "CLIP")]


def _cls(name, inputs, outputs):
    return type(name, (Node,), {"INPUTS": inputs, "OUTPUTS": outputs, "TITLE": name})


# Two inputs of one type, so a bypass's by-slot pick depends on the socket order.
MIX = _cls("Mix", (Input("a", "LATENT"), Input("b", "LATENT")),
           (Output("first", "LATENT"), Output("second", "LATENT")))
INT_PASS = _cls("IntPass", (Input("value", INT, default=0),), (Output("INT", INT),))
REG = {**COMFY_STUBS, "Mix": MIX, "IntPass": INT_PASS}


def doc_of(wf):
    return convert(wf, REG).document


def run_view(doc):
    """What executes: class and inputs of each prompt node (``_meta`` names reasons only)."""
    return {k: (v["class_type"], v["inputs"]) for k, v in document_to_prompt(doc, REG).items()}


def test_legacy_reroute_nodes_become_chained_points_and_fan_out():
    wf = workflow([node(1, "CheckpointLoaderSimple", ["c"], outputs=CKPT),
                   node(2, "Reroute", None, [("", "*")], [("", "CLIP")], size=[75, 26]),
                   node(3, "Reroute", None, [("", "*")], [("", "CLIP")], size=[75, 26]),
                   node(4, "CLIPTextEncode", ["a"], CLIP_IN, COND),
                   node(5, "CLIPTextEncode", ["b"], CLIP_IN, COND)],
                  [[1, 1, 1, 2, 0, "CLIP"], [2, 2, 0, 3, 0, "CLIP"], [3, 3, 0, 4, 0, "CLIP"],
                   [4, 3, 0, 5, 0, "CLIP"]])
    d = doc_of(wf)
    assert set(d["nodes"]) == {"1", "4", "5"}
    assert d["nodes"]["4"]["inputs"]["clip"] == ["1", 1] == d["nodes"]["5"]["inputs"]["clip"]
    assert d["nodes"]["4"]["ui"]["link_reroutes"] == {"clip": "rn3"}
    assert d["nodes"]["5"]["ui"]["link_reroutes"] == {"clip": "rn3"}
    # node() puts node k at (10k, 20k); a point sits at the Reroute box's centre.
    assert sorted(d["ui"]["reroutes"], key=lambda r: r["id"]) == [
        {"id": "rn2", "pos": [57.5, 53.0]},
        {"id": "rn3", "pos": [67.5, 73.0], "parent": "rn2"}]


def test_native_reroutes_schema_04_link_extensions():
    wf = workflow([node(1, "CheckpointLoaderSimple", ["c"], outputs=CKPT),
                   node(4, "CLIPTextEncode", ["a"], CLIP_IN, COND)],
                  [[9, 1, 1, 4, 0, "CLIP"]],
                  extra={"reroutes": [{"id": 1, "pos": [100, 50], "linkIds": [9]},
                                      {"id": 2, "parentId": 1, "pos": [150, 60], "linkIds": [9]}],
                         "linkExtensions": [{"id": 9, "parentId": 2}]})
    d = doc_of(wf)
    assert d["nodes"]["4"]["inputs"]["clip"] == ["1", 1]
    assert d["nodes"]["4"]["ui"]["link_reroutes"] == {"clip": "r2"}
    assert d["ui"]["reroutes"] == [{"id": "r2", "pos": [150, 60], "parent": "r1"},
                                   {"id": "r1", "pos": [100, 50]}]


def test_native_reroutes_schema_1_and_a_legacy_reroute_in_one_path():
    wf = {"version": 1, "state": {}, "nodes": [
        node(1, "CheckpointLoaderSimple", ["c"], outputs=CKPT),
        node(2, "Reroute", None, [("", "*")], [("", "CLIP")], size=[80, 20]),
        node(4, "CLIPTextEncode", ["a"], CLIP_IN, COND)],
        "links": [{"id": 1, "origin_id": 1, "origin_slot": 1, "target_id": 2, "target_slot": 0,
                   "type": "CLIP", "parentId": 7},
                  {"id": 2, "origin_id": 2, "origin_slot": 0, "target_id": 4, "target_slot": 0,
                   "type": "CLIP", "parentId": 8}],
        "reroutes": [{"id": 7, "pos": [5, 5]}, {"id": 8, "pos": [90, 90]}]}
    d = doc_of(wf)
    assert d["nodes"]["4"]["inputs"]["clip"] == ["1", 1]
    assert d["nodes"]["4"]["ui"]["link_reroutes"] == {"clip": "r8"}
    # target <- r8 <- Reroute node 2 <- r7 <- source
    assert d["ui"]["reroutes"] == [{"id": "r8", "pos": [90, 90], "parent": "rn2"},
                                   {"id": "rn2", "pos": [60, 50], "parent": "r7"},
                                   {"id": "r7", "pos": [5, 5]}]


@pytest.mark.parametrize("bad", [None, "x", [{"id": [1], "pos": [1, 2]}, {"id": 2}, 3]])
def test_malformed_native_reroutes_are_ignored_or_a_convert_error(bad):
    wf = workflow([node(1, "CheckpointLoaderSimple", ["c"], outputs=CKPT),
                   node(4, "CLIPTextEncode", ["a"], CLIP_IN, COND)], [[1, 1, 1, 4, 0, "CLIP"]],
                  extra={"reroutes": bad, "linkExtensions": [{"id": [1]}, {"id": 1, "parentId": 2}]})
    try:
        d = doc_of(wf)
    except ValueError as exc:
        assert "reroutes" in str(exc)
        return
    assert d["nodes"]["4"]["inputs"]["clip"] == ["1", 1]
    assert "link_reroutes" not in d["nodes"]["4"]["ui"]


def test_bypassed_node_kept_with_its_reroutes_on_both_sides():
    wf = workflow([node(1, "CLIPTextEncode", ["a"], CLIP_IN, COND),
                   node(2, "Reroute", None, [("", "*")], [("", "CONDITIONING")]),
                   node(3, "StableCascade_StageB_Conditioning", None,
                        [("conditioning", "CONDITIONING"), ("stage_c", "LATENT")], COND, mode=4),
                   node(5, "KSampler", KS_VALUES, KS_IN)],
                  [[1, 1, 0, 2, 0, "CONDITIONING"], [2, 2, 0, 3, 0, "CONDITIONING"],
                   [3, 3, 0, 5, 1, "CONDITIONING"]],
                  extra={"reroutes": [{"id": 4, "pos": [1, 1]}],
                         "linkExtensions": [{"id": 3, "parentId": 4}]})
    d = doc_of(wf)
    assert d["nodes"]["3"]["ui"]["mode"] == "bypass"
    assert d["nodes"]["3"]["inputs"]["conditioning"] == ["1", 0]
    assert d["nodes"]["3"]["ui"]["link_reroutes"] == {"conditioning": "rn2"}
    assert d["nodes"]["5"]["inputs"]["positive"] == ["3", 0]
    assert d["nodes"]["5"]["ui"]["link_reroutes"] == {"positive": "r4"}
    assert run_view(d)["5"][1]["positive"] == ["1", 0]


# Each case: the file, then what must execute (ComfyUI's resolution, as the converter gave before
# it kept these nodes): {node: (class, inputs)}.
CASES = {
    "bypass chain": (workflow(
        [node(1, "CLIPTextEncode", ["a"], CLIP_IN, COND),
         node(2, "StableCascade_StageB_Conditioning", None,
              [("conditioning", "CONDITIONING"), ("stage_c", "LATENT")], COND, mode=4),
         node(3, "StableCascade_StageB_Conditioning", None,
              [("conditioning", "CONDITIONING"), ("stage_c", "LATENT")], COND, mode=4),
         node(4, "KSampler", KS_VALUES, KS_IN)],
        [[1, 1, 0, 2, 0, "CONDITIONING"], [2, 2, 0, 3, 0, "CONDITIONING"],
         [3, 3, 0, 4, 1, "CONDITIONING"]]),
        {"1": ("CLIPTextEncode", {"text": "a"}),
         "4": ("KSampler", {"seed": 7, "steps": 25, "cfg": 4.5, "sampler_name": "euler",
                            "scheduler": "normal", "denoise": 0.5, "positive": ["1", 0]})}),
    # The file lists Mix's sockets as b, a: ComfyUI's slot-1 pick is a's source (node 2), the
    # class order would pick b's (node 1), so the converter wires ComfyUI's answer past the node.
    "socket order differs from the class": (workflow(
        [node(1, "StableCascade_EmptyLatentImage", [8, 8, 42, 1], outputs=[("c", "LATENT"), ("b", "LATENT")]),
         node(2, "StableCascade_EmptyLatentImage", [16, 16, 42, 1], outputs=[("c", "LATENT"), ("b", "LATENT")]),
         node(3, "Mix", None, [("b", "LATENT"), ("a", "LATENT")],
              [("first", "LATENT"), ("second", "LATENT")], mode=4),
         node(4, "VAEDecode", None, [("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")])],
        [[1, 1, 0, 3, 0, "LATENT"], [2, 2, 0, 3, 1, "LATENT"], [3, 3, 1, 4, 0, "LATENT"]]),
        {"1": ("StableCascade_EmptyLatentImage", {"width": 8, "height": 8, "compression": 42, "batch_size": 1}),
         "2": ("StableCascade_EmptyLatentImage", {"width": 16, "height": 16, "compression": 42, "batch_size": 1}),
         "4": ("VAEDecode", {"samples": ["2", 0]})}),
    "primitive behind a bypass": (workflow(
        [node(1, "PrimitiveNode", [99, "fixed"], outputs=[("INT", "INT")]),
         node(2, "IntPass", [0], [("value", "INT", "value")], [("INT", "INT")], mode=4),
         node(3, "KSampler", KS_VALUES, [*KS_IN, ("seed", "INT", "seed")])],
        [[1, 1, 0, 2, 0, "INT"], [2, 2, 0, 3, 4, "INT"]]),
        {"3": ("KSampler", {"seed": 99, "steps": 25, "cfg": 4.5, "sampler_name": "euler",
                            "scheduler": "normal", "denoise": 0.5})}),
    "widget input from a muted node keeps its value": (workflow(
        [node(1, "IntPass", [5], [("value", "INT", "value")], [("INT", "INT")], mode=2),
         node(3, "KSampler", KS_VALUES, [*KS_IN, ("seed", "INT", "seed")])],
        [[1, 1, 0, 3, 4, "INT"]]),
        {"3": ("KSampler", {"seed": 7, "steps": 25, "cfg": 4.5, "sampler_name": "euler",
                            "scheduler": "normal", "denoise": 0.5})}),
    "socket input from a muted node is dropped": (workflow(
        [node(1, "CLIPTextEncode", ["a"], CLIP_IN, COND, mode=2),
         node(3, "KSampler", KS_VALUES, KS_IN)], [[1, 1, 0, 3, 1, "CONDITIONING"]]),
        {"3": ("KSampler", {"seed": 7, "steps": 25, "cfg": 4.5, "sampler_name": "euler",
                            "scheduler": "normal", "denoise": 0.5})}),
    "bypassed node of an unknown class is resolved away": (workflow(
        [node(1, "CLIPTextEncode", ["a"], CLIP_IN, COND),
         node(2, "FancyCond", None, [("c", "CONDITIONING")], COND, mode=4),
         node(3, "KSampler", KS_VALUES, KS_IN)],
        [[1, 1, 0, 2, 0, "CONDITIONING"], [2, 2, 0, 3, 1, "CONDITIONING"]]),
        {"1": ("CLIPTextEncode", {"text": "a"}),
         "3": ("KSampler", {"seed": 7, "steps": 25, "cfg": 4.5, "sampler_name": "euler",
                            "scheduler": "normal", "denoise": 0.5, "positive": ["1", 0]})}),
}


@pytest.mark.parametrize("name", CASES)
def test_kept_modes_run_exactly_what_comfyui_resolution_ran(name):
    wf, expected = CASES[name]
    out = convert(wf, REG)
    assert run_view(out.document) == expected
    assert out.missing_classes == []
    modes = {k: n["ui"].get("mode") for k, n in out.document["nodes"].items()}
    for raw in wf["nodes"]:
        if raw["mode"] in (2, 4) and raw["type"] in REG:
            assert modes[str(raw["id"])] == {2: "mute", 4: "bypass"}[raw["mode"]]


STUB_FILE = workflow([node(1, "Const", [21]),
                      node(2, "Scale", [3, "mul"], [("x", "NUMBER")], [("number", "NUMBER")], mode=4),
                      node(3, "Reroute", None, [("", "*")], [("", "NUMBER")]),
                      node(4, "Show", None, [("x", "NUMBER")]),
                      node(5, "Const", [5], outputs=[("number", "NUMBER")], mode=2)],
                     [[1, 1, 0, 2, 0, "NUMBER"], [2, 2, 0, 3, 0, "NUMBER"], [3, 3, 0, 4, 0, "NUMBER"]])


def test_convert_route_and_running_the_file_agree(tmp_path):
    with stub_server(tmp_path) as (base, _env, _config):
        status, conv = http_json("POST", base + "/workflow/convert", {"workflow": STUB_FILE})
        assert status == 200, conv
        assert conv["document"]["nodes"]["2"]["ui"]["mode"] == "bypass"
        assert conv["document"]["nodes"]["5"]["ui"]["mode"] == "mute"
        assert conv["document"]["nodes"]["4"]["ui"]["link_reroutes"] == {"x": "rn3"}
        assert set(conv["prompt"]) == {"1", "4"} and conv["prompt"]["4"]["inputs"] == {"x": ["1", 0]}
        status, ran = http_json("POST", base + "/prompt?wait=1", {"prompt": STUB_FILE})
        assert status == 200 and ran["state"] == "done", ran
        assert ran["outputs"]["4"]["text"] == ["21"]  # Scale bypassed: 21, not 63
        assert ran["prompt"][2] == conv["prompt"]
        assert ran["prompt"][3]["extra_pnginfo"]["workflow"] == conv["document"]
