"""ComfyUI editor format -> our document: each construct on a small hand-written file."""
import pytest

from engine.comfy_workflow import ConvertError, convert
from engine.workflow import document_to_prompt
from tests.comfy_editor_files import CKPT, COND, KS_IN, node, workflow
from tests.comfy_stub_classes import COMFY_STUBS as REG

KS_VALUES = [7, "increment", 25, 4.5, "euler", "normal", 0.5]


def doc_of(wf):
    return convert(wf, REG).document


def test_widgets_named_by_class_order_seed_control_skipped_and_kept_in_ui():
    d = doc_of(workflow([node(3, "KSampler", KS_VALUES, KS_IN, [("LATENT", "LATENT")])], []))
    n = d["nodes"]["3"]
    assert n["inputs"] == {"seed": 7, "steps": 25, "cfg": 4.5, "sampler_name": "euler",
                           "scheduler": "normal", "denoise": 0.5}
    assert n["ui"]["seed_control"] == "increment"
    # A file written without the control value (older frontends) maps the same way.
    d = doc_of(workflow([node(3, "KSampler", [7, 25, 4.5, "euler", "normal", 0.5], KS_IN)], []))
    assert d["nodes"]["3"]["inputs"]["steps"] == 25 and "seed_control" not in d["nodes"]["3"]["ui"]


def test_unhashable_value_after_a_seed_is_a_value_not_a_crash():
    # A list where the control word would be (a hand-edited or foreign file) is just the next value.
    d = doc_of(workflow([node(3, "KSampler", [7, [1, 2], 4.5], KS_IN)], []))
    assert d["nodes"]["3"]["inputs"]["steps"] == {"__value__": [1, 2]}


def test_load_image_upload_value_dropped_and_dict_widgets_taken_by_name():
    d = doc_of(workflow([node(1, "LoadImage", ["pic.png", "image"]),
                         node(2, "KSampler", {"steps": 3, "seed": 1, "bogus": 2}, KS_IN)], []))
    assert d["nodes"]["1"]["inputs"] == {"image": "pic.png"}
    assert d["nodes"]["2"]["inputs"] == {"steps": 3, "seed": 1}


def test_links_follow_reroute_chains_and_reroutes_vanish():
    wf = workflow([node(1, "CheckpointLoaderSimple", ["c.safetensors"], outputs=CKPT),
                   node(2, "Reroute", None, [("", "*")], [("", "CLIP")]),
                   node(3, "Reroute", None, [("", "*")], [("", "CLIP")]),
                   node(4, "CLIPTextEncode", ["hi"], [("clip", "CLIP")], COND)],
                  [[1, 1, 1, 2, 0, "CLIP"], [2, 2, 0, 3, 0, "CLIP"], [3, 3, 0, 4, 0, "CLIP"]])
    d = doc_of(wf)
    assert set(d["nodes"]) == {"1", "4"}
    assert d["nodes"]["4"]["inputs"] == {"text": "hi", "clip": ["1", 1]}


def test_reroute_cycle_is_a_convert_error():
    wf = workflow([node(2, "Reroute", None, [("", "*")], [("", "CLIP")]),
                   node(3, "Reroute", None, [("", "*")], [("", "CLIP")]),
                   node(4, "CLIPTextEncode", ["hi"], [("clip", "CLIP")], COND)],
                  [[1, 2, 0, 3, 0, "CLIP"], [2, 3, 0, 2, 0, "CLIP"], [3, 3, 0, 4, 0, "CLIP"]])
    with pytest.raises(ConvertError, match="loops"):
        convert(wf, REG)


def test_notes_become_editor_notes():
    wf = workflow([node(5, "Note", ["plain text"]), node(6, "MarkdownNote", ["# md"])], [])
    d = doc_of(wf)
    assert d["nodes"] == {}
    assert d["ui"]["notes"] == [
        {"id": "note5", "pos": [50, 100], "size": [200, 80], "text": "plain text"},
        {"id": "note6", "pos": [60, 120], "size": [200, 80], "text": "# md"}]


def test_primitive_value_inlined_into_every_target():
    wf = workflow([node(1, "PrimitiveNode", [99, "fixed"], outputs=[("INT", "INT")]),
                   node(2, "KSampler", KS_VALUES, [*KS_IN, ("seed", "INT", "seed")]),
                   node(3, "KSampler", KS_VALUES, [*KS_IN, ("seed", "INT", "seed")])],
                  [[1, 1, 0, 2, 4, "INT"], [2, 1, 0, 3, 4, "INT"]])
    d = doc_of(wf)
    assert set(d["nodes"]) == {"2", "3"}
    assert d["nodes"]["2"]["inputs"]["seed"] == 99 and d["nodes"]["3"]["inputs"]["seed"] == 99
    assert d["nodes"]["2"]["inputs"]["steps"] == 25


def test_bypassed_node_passes_its_first_input_of_the_same_type():
    wf = workflow([node(1, "CLIPTextEncode", ["a"], [("clip", "CLIP")], COND),
                   node(2, "StableCascade_StageB_Conditioning", None,
                        [("conditioning", "CONDITIONING"), ("stage_c", "LATENT")], COND, mode=4),
                   node(3, "KSampler", KS_VALUES, KS_IN),
                   node(4, "VAEDecode", None, [("samples", "LATENT"), ("vae", "VAE")], mode=4,
                        outputs=[("IMAGE", "IMAGE")]),
                   node(5, "SaveImage", ["x"], [("images", "IMAGE")])],
                  [[1, 1, 0, 2, 0, "CONDITIONING"], [2, 2, 0, 3, 1, "CONDITIONING"],
                   [3, 3, 0, 4, 0, "LATENT"], [4, 4, 0, 5, 0, "IMAGE"]])
    d = doc_of(wf)
    # Kept as nodes with ui.mode; the server resolves them when it builds the prompt.
    assert d["nodes"]["2"]["ui"]["mode"] == "bypass" and d["nodes"]["4"]["ui"]["mode"] == "bypass"
    prompt = document_to_prompt(d, REG)
    assert set(prompt) == {"1", "3", "5"}
    assert prompt["3"]["inputs"]["positive"] == ["1", 0]
    assert "images" not in prompt["5"]["inputs"]  # no IMAGE input to pass: link dropped


def test_muted_node_removed_with_its_links():
    wf = workflow([node(1, "CLIPTextEncode", ["a"], [("clip", "CLIP")], COND, mode=2),
                   node(3, "KSampler", KS_VALUES, KS_IN)], [[1, 1, 0, 3, 1, "CONDITIONING"]])
    d = doc_of(wf)
    assert d["nodes"]["1"]["ui"]["mode"] == "mute" and d["nodes"]["3"]["inputs"]["positive"] == ["1", 0]
    prompt = document_to_prompt(d, REG)
    assert set(prompt) == {"3"} and "positive" not in prompt["3"]["inputs"]


def test_unknown_class_kept_with_file_sockets_and_reported():
    wf = workflow([node(1, "VAEDecode", None, [("samples", "LATENT"), ("vae", "VAE")],
                        [("IMAGE", "IMAGE")]),
                   node(2, "FancyUpscale", [2, "lanczos"], [("image", "IMAGE")], [("IMAGE", "IMAGE")]),
                   node(3, "SaveImage", ["x"], [("images", "IMAGE")])],
                  [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]])
    out = convert(wf, REG)
    assert out.missing_classes == ["FancyUpscale"]
    fancy = out.document["nodes"]["2"]
    assert fancy["inputs"] == {"image": ["1", 0]}
    assert fancy["ui"]["comfy"] == {"widgets_values": [2, "lanczos"],
                                    "inputs": [{"name": "image", "type": "IMAGE"}],
                                    "outputs": [{"name": "IMAGE", "type": "IMAGE"}]}
    assert out.document["nodes"]["3"]["inputs"]["images"] == ["2", 0]


def test_positions_sizes_titles_colours_groups_and_view_kept():
    wf = workflow([node(4, "CLIPTextEncode", ["a"], [("clip", "CLIP")], COND, title="Positive",
                        color="#232", bgcolor="#353")], [],
                  groups=[{"title": "Stage C", "bounding": [1, 2, 300, 400], "color": "#b06634",
                           "font_size": 24}],
                  extra={"ds": {"scale": 0.5, "offset": [10, -20]}})
    d = doc_of(wf)
    assert d["nodes"]["4"]["ui"] == {"pos": [40, 80], "size": [200, 80], "title": "Positive",
                                     "color": "#232", "bgcolor": "#353"}
    assert d["ui"]["groups"] == [{"title": "Stage C", "bounding": [1, 2, 300, 400],
                                  "color": "#b06634", "font_size": 24}]
    # litegraph's offset is in graph units (drawn at (pos + offset) * scale); ours is in pixels.
    assert d["ui"]["view"] == {"offset": [5, -10], "scale": 0.5}
    prompt = document_to_prompt(d, REG)
    assert prompt["4"]["_meta"] == {"title": "Positive"}


def test_group_node_expanded_with_unique_ids_and_instance_widgets():
    group = {"nodes": [{"index": 0, "type": "CheckpointLoaderSimple", "widgets_values": ["a"],
                        "outputs": [{"name": n, "type": t} for n, t in CKPT]},
                       {"index": 1, "type": "CLIPTextEncode", "widgets_values": ["inner"],
                        "inputs": [{"name": "clip", "type": "CLIP"}],
                        "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING"}]}],
             "links": [[0, 1, 1, 0, 1, "CLIP"]], "external": []}
    wf = workflow([node(10, "workflow/enc", ["b.safetensors", "hello"], [],
                        [("MODEL", "MODEL"), ("VAE", "VAE"), ("CONDITIONING", "CONDITIONING")]),
                   node(3, "KSampler", KS_VALUES, KS_IN)],
                  [[1, 10, 0, 3, 0, "MODEL"], [2, 10, 2, 3, 1, "CONDITIONING"]],
                  extra={"groupNodes": {"enc": group}})
    d = doc_of(wf)
    assert set(d["nodes"]) == {"10:0", "10:1", "3"}
    assert d["nodes"]["10:0"]["inputs"] == {"ckpt_name": "b.safetensors"}
    assert d["nodes"]["10:1"]["inputs"] == {"text": "hello", "clip": ["10:0", 1]}
    assert d["nodes"]["3"]["inputs"]["model"] == ["10:0", 0]
    assert d["nodes"]["3"]["inputs"]["positive"] == ["10:1", 0]


def _subgraph_file():
    sub = {"id": "5f1e-sub", "name": "encode", "version": 1,
           "inputNode": {"id": -10}, "outputNode": {"id": -20},
           "inputs": [{"id": "i0", "name": "clip", "type": "CLIP"}],
           "outputs": [{"id": "o0", "name": "CONDITIONING", "type": "CONDITIONING"}],
           "nodes": [node(1, "CLIPTextEncode", ["inside"], [("clip", "CLIP")], COND)],
           "links": [{"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1,
                      "target_slot": 0, "type": "CLIP"},
                     {"id": 2, "origin_id": 1, "origin_slot": 0, "target_id": -20,
                      "target_slot": 0, "type": "CONDITIONING"}]}
    nodes = [node(1, "CheckpointLoaderSimple", ["c"], outputs=CKPT),
             node(5, "5f1e-sub", None, [("clip", "CLIP")], COND),
             node(6, "5f1e-sub", None, [("clip", "CLIP")], COND),
             node(3, "KSampler", KS_VALUES, KS_IN)]
    links = [{"id": i, "origin_id": o, "origin_slot": os_, "target_id": t, "target_slot": ts,
              "type": ty} for i, o, os_, t, ts, ty in
             [(1, 1, 1, 5, 0, "CLIP"), (2, 1, 1, 6, 0, "CLIP"), (3, 5, 0, 3, 1, "CONDITIONING"),
              (4, 6, 0, 3, 2, "CONDITIONING")]]
    return {"version": 1, "state": {"lastNodeId": 6, "lastLinkId": 4}, "nodes": nodes,
            "links": links, "groups": [], "definitions": {"subgraphs": [sub]}, "extra": {}}


def test_subgraph_schema_1_expanded_per_instance():
    d = doc_of(_subgraph_file())
    assert set(d["nodes"]) == {"1", "5:1", "6:1", "3"}
    assert d["nodes"]["5:1"]["inputs"] == {"text": "inside", "clip": ["1", 1]}
    assert d["nodes"]["6:1"]["inputs"]["clip"] == ["1", 1]
    assert d["nodes"]["3"]["inputs"]["positive"] == ["5:1", 0]
    assert d["nodes"]["3"]["inputs"]["negative"] == ["6:1", 0]
    assert d["nodes"]["5:1"]["ui"]["pos"] == [50, 100]  # drawn where the instance stood


def test_subgraph_containing_itself_is_refused():
    wf = _subgraph_file()
    sub = wf["definitions"]["subgraphs"][0]
    sub["nodes"].append(node(2, "5f1e-sub", None, [("clip", "CLIP")], COND))
    with pytest.raises(ConvertError, match="nests deeper"):
        convert(wf, REG)


def test_meta_title_from_class_title_or_name():
    titled = type("Titled", (REG["VAEDecode"],), {"TITLE": "Decode (shown name)"})
    doc = {"version": 1, "nodes": {"1": {"class_type": "Titled", "inputs": {}},
                                   "2": {"class_type": "Nope", "inputs": {}, "ui": {"title": ""}}}}
    prompt = document_to_prompt(doc, {**REG, "Titled": titled})
    assert prompt["1"]["_meta"] == {"title": "Decode (shown name)"}
    assert prompt["2"]["_meta"] == {"title": "Nope"}


@pytest.mark.parametrize("links, groups", [
    ([[1, 1, 0, 2, 10**9, "CLIP"]], None),  # the target's input list used to be padded to it
    ([{"origin_id": 1, "origin_slot": 0, "target_id": 2, "target_slot": 10**9}], None),
    ([], {"g": {"nodes": [{"type": "CLIPTextEncode", "index": 0},
                          {"type": "CLIPTextEncode", "index": 1}],
                "links": [[0, 0, 1, 10**9]]}}),
])
def test_a_huge_slot_number_is_refused_at_once(links, groups):
    nodes = [node(1, "CheckpointLoaderSimple", ["c.safetensors"], outputs=CKPT),
             node(2, "CLIPTextEncode", ["hi"], [("clip", "CLIP")], COND)]
    if groups:
        nodes.append(node(3, "workflow/g", []))
    wf = workflow(nodes, [])
    wf["links"] = links
    if groups:
        wf["extra"] = {"groupNodes": groups}
    with pytest.raises(ConvertError, match="slot must be an integer from 0 to 999"):
        convert(wf, REG)
