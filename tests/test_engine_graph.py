"""Prompt validation: ComfyUI error shapes and type strings, coercion, cycles, partial targets."""
from pathlib import Path

import pytest

from engine.graph import validate_prompt
from engine.workflow import document_to_prompt, is_document
from tests.stub_nodes import STUB_NODES, StubEnv

ENV = StubEnv(Path("/nonexistent"))


def check(prompt, targets=None):
    return validate_prompt(prompt, STUB_NODES, ENV, targets)


def reasons(result, node_id):
    return [r["type"] for r in result.node_errors[node_id]["errors"]]


def simple(value=1):
    return {"1": {"class_type": "Const", "inputs": {"value": value}},
            "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}}


def test_valid_prompt_lists_outputs_and_coerces_literals():
    result = check(simple("7"))
    assert result.ok and result.outputs == ["2"] and result.node_errors == {}
    assert result.prompt["1"]["inputs"]["value"] == 7  # "7" coerced to int


def test_unknown_class_and_missing_class_type_are_invalid_prompt():
    result = check({"1": {"class_type": "Nope", "inputs": {}}})
    assert result.error["type"] == "invalid_prompt"
    assert "Nope" in result.error["message"] and result.error["details"] == "Node ID '#1'"
    result = check({"5": {"inputs": {}}})
    assert result.error["type"] == "invalid_prompt" and result.error["details"] == "Node ID '#5'"
    assert check([1, 2]).error["type"] == "invalid_prompt"


def test_no_output_node():
    result = check({"1": {"class_type": "Const", "inputs": {"value": 1}}})
    assert result.error["type"] == "prompt_no_outputs"


def test_required_input_missing_names_node_and_input():
    result = check({"2": {"class_type": "Show", "inputs": {}}})
    assert result.error["type"] == "prompt_outputs_failed_validation"
    reason = result.node_errors["2"]["errors"][0]
    assert reason["type"] == "required_input_missing"
    assert reason["extra_info"]["input_name"] == "x" and reason["details"] == "x"
    assert result.node_errors["2"]["class_type"] == "Show"
    assert result.node_errors["2"]["dependent_outputs"] == ["2"]


@pytest.mark.parametrize("link", [["1"], ["1", 0, 0], ["1", "0"], ["9", 0], ["1", 3]])
def test_bad_links(link):
    prompt = simple()
    prompt["2"]["inputs"]["x"] = link
    assert reasons(check(prompt), "2") == ["bad_linked_input"]


def test_return_type_mismatch():
    prompt = {"1": {"class_type": "Pick", "inputs": {"name": "alpha", "text": "x"}},
              "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}}
    result = check(prompt)
    reason = result.node_errors["2"]["errors"][0]
    assert reason["type"] == "return_type_mismatch"
    assert reason["extra_info"]["received_type"] == "TEXT"
    assert reason["extra_info"]["linked_node"] == ["1", 0]


@pytest.mark.parametrize("value", ["abc", 1.5, [1], None, True])
def test_invalid_input_type(value):
    prompt = simple()
    prompt["1"]["inputs"]["value"] = value
    if isinstance(value, list):  # a bare list is a link: wrap literals like ComfyUI does
        prompt["1"]["inputs"]["value"] = {"__value__": value}
    assert reasons(check(prompt), "1") == ["invalid_input_type"]


def test_min_max_and_input_config():
    low = check(simple(-5000))
    reason = low.node_errors["1"]["errors"][0]
    assert reason["type"] == "value_smaller_than_min"
    assert reason["extra_info"]["input_config"][0] == "INT"
    assert reason["extra_info"]["received_value"] == -5000
    assert reasons(check(simple(5000)), "1") == ["value_bigger_than_max"]


def test_value_not_in_list_small_and_large_lists():
    prompt = {"1": {"class_type": "Pick", "inputs": {"name": "gamma", "text": ""}},
              "2": {"class_type": "ShowText", "inputs": {"text": ["1", 0]}}}
    reason = check(prompt).node_errors["1"]["errors"][0]
    assert reason["type"] == "value_not_in_list"
    assert reason["details"] == "name: 'gamma' not in ['alpha', 'beta']"
    big = StubEnv(Path("/x"), choices=[f"m{i}" for i in range(30)])
    result = validate_prompt(prompt, STUB_NODES, big)
    reason = result.node_errors["1"]["errors"][0]
    assert reason["details"] == "name: 'gamma' not in (list of length 30)"
    assert reason["extra_info"]["input_config"] is None


def test_custom_validation_failed_from_check():
    prompt = {"1": {"class_type": "Pick", "inputs": {"name": "alpha", "text": "bad"}},
              "2": {"class_type": "ShowText", "inputs": {"text": ["1", 0]}}}
    reason = check(prompt).node_errors["1"]["errors"][0]
    assert reason["type"] == "custom_validation_failed"
    assert reason["details"] == "text - must not be 'bad'"


def test_boolean_and_float_coercion():
    prompt = {"1": {"class_type": "Pick", "inputs": {"name": "alpha", "text": 5, "flag": "true"}},
              "2": {"class_type": "ShowText", "inputs": {"text": ["1", 0]}},
              "3": {"class_type": "Const", "inputs": {"value": 2.0}},
              "4": {"class_type": "Scale", "inputs": {"x": ["3", 0], "factor": "2.5", "mode": "mul"}},
              "5": {"class_type": "Show", "inputs": {"x": ["4", 0]}}}
    result = check(prompt)
    assert result.ok, result.node_errors
    assert result.prompt["1"]["inputs"] == {"name": "alpha", "text": "5", "flag": True}
    assert result.prompt["3"]["inputs"]["value"] == 2 and result.prompt["4"]["inputs"]["factor"] == 2.5


def test_partially_valid_prompt_keeps_good_outputs_and_reports_bad():
    prompt = simple()
    prompt["3"] = {"class_type": "Show", "inputs": {}}
    result = check(prompt)
    assert result.ok and result.outputs == ["2"]
    assert reasons(result, "3") == ["required_input_missing"]


def test_upstream_error_listed_only_on_its_own_node():
    prompt = simple(99999)
    result = check(prompt)
    assert set(result.node_errors) == {"1"}
    assert result.node_errors["1"]["dependent_outputs"] == ["2"]


def test_cycle_is_reported():
    prompt = {"1": {"class_type": "Add", "inputs": {"a": ["2", 0], "b": ["2", 0]}},
              "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["1", 0]}},
              "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}
    result = check(prompt)
    assert result.error["type"] == "prompt_outputs_failed_validation"
    assert any("dependency_cycle" in reasons(result, n) for n in result.node_errors)


def test_partial_execution_targets():
    prompt = simple()
    prompt["3"] = {"class_type": "Show", "inputs": {"x": ["1", 0]}}
    assert check(prompt, ["3"]).outputs == ["3"]
    assert check(prompt, ["1"]).error["type"] == "prompt_no_outputs"


def test_optional_inputs_may_be_absent_and_unknown_keys_ignored():
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 1, "upload": "image"}},
              "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["1", 0]}},
              "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}
    assert check(prompt).ok


def test_document_strips_ui_to_api_prompt():
    doc = {"version": 1, "nodes": {
        "1": {"class_type": "Const", "inputs": {"value": 2}, "ui": {"pos": [0, 0], "title": "N"}},
        "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}, "ui": {"pos": [100, 0]}}},
        "ui": {"view": {"offset": [0, 0], "scale": 1}}}
    assert is_document(doc) and not is_document(simple())
    prompt = document_to_prompt(doc)
    assert prompt["1"] == {"class_type": "Const", "inputs": {"value": 2}, "_meta": {"title": "N"}}
    # Untitled: the class name, so every prompt we hand out carries _meta.title.
    assert prompt["2"] == {"class_type": "Show", "inputs": {"x": ["1", 0]},
                           "_meta": {"title": "Show"}}
    assert check(prompt).ok
