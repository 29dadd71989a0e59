"""Bypass and mute in our workflow document (``ui.mode``) -> the API prompt the server runs."""
from types import SimpleNamespace

from engine.graph import validate_prompt
from engine.schema import INT, STRING, Input, Node, Output
from engine.workflow import document_to_prompt


class Src(Node):
    INPUTS = (Input("text", STRING, default="a"),)
    OUTPUTS = (Output("text", STRING),)

    def run(self, ctx, text):
        return (text,)


class Mix(Node):
    """Two STRING inputs then an INT; gives an INT first and a STRING second."""
    INPUTS = (Input("a", STRING), Input("b", STRING), Input("n", INT))
    OUTPUTS = (Output("count", INT), Output("text", STRING))

    def run(self, ctx, a, b, n):
        return (n, a + b)


class Sink(Node):
    OUTPUT_NODE = True
    INPUTS = (Input("text", STRING), Input("extra", STRING, optional=True))
    OUTPUTS = ()

    def run(self, ctx, text, extra=None):
        return ()


REG = {"Src": Src, "Mix": Mix, "Sink": Sink}


def doc(**modes):
    nodes = {
        "1": {"class_type": "Src", "inputs": {"text": "x"}},
        "2": {"class_type": "Src", "inputs": {"text": "y"}},
        "3": {"class_type": "Mix", "inputs": {"a": ["1", 0], "b": ["2", 0], "n": 3}},
        "4": {"class_type": "Sink", "inputs": {"text": ["3", 1], "extra": ["1", 0]}},
        "5": {"class_type": "Sink", "inputs": {"text": ["2", 0]}},
    }
    for node_id, mode in modes.items():
        nodes[node_id.lstrip("n")]["ui"] = {"mode": mode}
    return {"version": 1, "nodes": nodes}


def strip_titles(prompt):
    for entry in prompt.values():
        meta = entry.pop("_meta")
        if "left_out" in meta:
            entry["left_out"] = meta["left_out"]
    return prompt


def test_no_modes_keeps_every_node_and_link():
    prompt = strip_titles(document_to_prompt(doc(), REG))
    assert prompt["4"] == {"class_type": "Sink", "inputs": {"text": ["3", 1], "extra": ["1", 0]}}
    assert set(prompt) == {"1", "2", "3", "4", "5"}


def test_bypassed_node_passes_its_first_input_of_the_output_type():
    prompt = strip_titles(document_to_prompt(doc(n3="bypass"), REG))
    assert prompt == {
        "1": {"class_type": "Src", "inputs": {"text": "x"}},
        "2": {"class_type": "Src", "inputs": {"text": "y"}},
        # output 1 (STRING): slot 1 ("b", STRING, linked) matches by slot first, ComfyUI's rule
        "4": {"class_type": "Sink", "inputs": {"text": ["2", 0], "extra": ["1", 0]}},
        "5": {"class_type": "Sink", "inputs": {"text": ["2", 0]}},
    }


def test_bypass_chain_walks_to_the_first_running_source():
    document = doc(n3="bypass")
    document["nodes"]["6"] = {"class_type": "Mix", "inputs": {"a": ["3", 1], "b": "z", "n": 1},
                              "ui": {"mode": "bypass"}}
    document["nodes"]["5"]["inputs"]["text"] = ["6", 1]
    prompt = strip_titles(document_to_prompt(document, REG))
    # 6's output 1 (STRING): slot 1 is a literal, so the first linked STRING input "a" -> 3 -> 2
    assert prompt["5"] == {"class_type": "Sink", "inputs": {"text": ["2", 0]}}
    assert "6" not in prompt and "3" not in prompt


def test_bypassed_output_without_an_input_of_its_type_drops_the_link_with_a_reason():
    document = doc(n3="bypass")
    document["nodes"]["4"]["inputs"]["text"] = ["3", 0]  # INT output; Mix's only INT is a literal
    prompt = document_to_prompt(document, REG)
    assert prompt["4"]["inputs"] == {"extra": ["1", 0]}
    assert prompt["4"]["_meta"]["left_out"] == {
        "text": "node 3 is bypassed and has no linked INT input to pass on"}


def test_muted_node_left_out_and_links_from_it_dropped():
    prompt = strip_titles(document_to_prompt(doc(n1="mute"), REG))
    assert prompt == {
        "2": {"class_type": "Src", "inputs": {"text": "y"}},
        "3": {"class_type": "Mix", "inputs": {"b": ["2", 0], "n": 3},
              "left_out": {"a": "node 1 is muted"}},
        "4": {"class_type": "Sink", "inputs": {"text": ["3", 1]},
              "left_out": {"extra": "node 1 is muted"}},
        "5": {"class_type": "Sink", "inputs": {"text": ["2", 0]}},
    }


def test_validation_runs_what_does_not_need_the_muted_node_and_says_why_the_rest_fails():
    result = validate_prompt(document_to_prompt(doc(n1="mute"), REG), REG, SimpleNamespace())
    assert result.outputs == ["5"]  # 4 needs 3, which needs muted 1: not run
    reason = result.node_errors["3"]["errors"][0]
    assert reason["type"] == "required_input_missing"
    assert reason["details"] == "a: node 1 is muted"


def test_unknown_mode_words_and_a_missing_registry_are_handled():
    document = doc(n3="bypass")
    document["nodes"]["1"]["ui"] = {"mode": "sideways"}  # not a mode: the node runs
    prompt = document_to_prompt(document)  # no registry: the bypass cannot be typed
    assert "1" in prompt and "3" not in prompt
    assert prompt["4"]["_meta"]["left_out"] == {"text": "node 3 is bypassed and its class is unknown"}
