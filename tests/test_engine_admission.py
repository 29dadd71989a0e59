"""The ``env.admit`` hook: a valid prompt the environment cannot run is refused per output."""
from dataclasses import dataclass, field
from pathlib import Path

from engine.graph import validate_prompt
from tests.stub_nodes import STUB_NODES, StubEnv


@dataclass
class AdmitEnv(StubEnv):
    """Refuses any Scale whose factor is above `budget`; records what admit was shown."""

    budget: float = 5.0
    seen: list = field(default_factory=list)
    fail_with: Exception | None = None

    def admit(self, prompt):
        self.seen.append(prompt)
        if self.fail_with is not None:
            raise self.fail_with
        return {nid: {"factor": f"needs {node['inputs']['factor']} units; at most "
                                f"{self.budget} fit"}
                for nid, node in prompt.items()
                if node["class_type"] == "Scale" and node["inputs"]["factor"] > self.budget}


def two_outputs(factor_a="2", factor_b=1.0):
    return {"1": {"class_type": "Const", "inputs": {"value": 3}},
            "2": {"class_type": "Scale", "inputs": {"x": ["1", 0], "factor": factor_a,
                                                   "mode": "mul"}},
            "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}},
            "4": {"class_type": "Scale", "inputs": {"x": ["1", 0], "factor": factor_b,
                                                   "mode": "mul"}},
            "5": {"class_type": "Show", "inputs": {"x": ["4", 0]}},
            "6": {"class_type": "Const", "inputs": {"value": 1}}}  # feeds no output


def env_(**kw):
    return AdmitEnv(Path("/nonexistent"), **kw)


def test_admit_sees_coerced_needed_nodes_only():
    env = env_()
    result = validate_prompt(two_outputs(), STUB_NODES, env)
    assert result.ok and result.outputs == ["3", "5"]
    (shown,) = env.seen
    assert set(shown) == {"1", "2", "3", "4", "5"}  # node 6 feeds nothing that runs
    assert shown["2"] == {"class_type": "Scale", "class": STUB_NODES["Scale"],
                          "inputs": {"x": ["1", 0], "factor": 2.0, "mode": "mul"}}


def test_refused_node_fails_its_outputs_with_a_named_reason():
    env = env_(budget=1.5)
    result = validate_prompt(two_outputs(factor_a=8.0), STUB_NODES, env)
    assert result.ok and result.outputs == ["5"]  # the other output still runs
    error = result.node_errors["2"]
    assert error["dependent_outputs"] == ["3"] and error["class_type"] == "Scale"
    (reason,) = error["errors"]
    assert reason["type"] == "insufficient_memory"
    assert reason["extra_info"]["input_name"] == "factor"
    assert "at most 1.5 fit" in reason["details"]


def test_all_outputs_refused_is_a_prompt_error():
    env = env_(budget=0.5)
    result = validate_prompt(two_outputs(), STUB_NODES, env)
    assert not result.ok and result.outputs == []
    assert result.error["type"] == "prompt_outputs_failed_validation"
    assert "at most 0.5 fit" in result.error["details"]
    assert set(result.node_errors) == {"2", "4"}


def test_exception_in_admit_is_a_node_error_not_a_crash():
    env = env_(fail_with=ZeroDivisionError("estimate broke"))
    result = validate_prompt(two_outputs(), STUB_NODES, env)
    assert not result.ok
    for out in ("3", "5"):
        (reason,) = result.node_errors[out]["errors"]
        assert reason["type"] == "exception_during_validation"
        assert reason["extra_info"]["exception_type"] == "ZeroDivisionError"
        assert result.node_errors[out]["dependent_outputs"] == [out]


def test_malformed_answer_or_unknown_node_refuses_rather_than_crashes():
    class Odd(AdmitEnv):
        def admit(self, prompt):
            return {"99": {"width": "too big"}}

    result = validate_prompt(two_outputs(), STUB_NODES, Odd(Path("/nonexistent")))
    assert not result.ok and set(result.node_errors) == {"3", "5"}

    class Wrong(AdmitEnv):
        def admit(self, prompt):
            return ["not", "a", "dict"]

    result = validate_prompt(two_outputs(), STUB_NODES, Wrong(Path("/nonexistent")))
    assert not result.ok
    assert result.node_errors["3"]["errors"][0]["type"] == "exception_during_validation"


def test_admit_is_not_called_when_nothing_is_runnable_or_absent():
    env = env_()
    prompt = two_outputs(factor_a=99.0, factor_b=99.0)  # above Scale's declared max of 10
    assert not validate_prompt(prompt, STUB_NODES, env).ok
    assert env.seen == []
    assert validate_prompt(two_outputs(), STUB_NODES, StubEnv(Path("/x"))).ok  # no hook
