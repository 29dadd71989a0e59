"""Executor on stub nodes: needed nodes only, order, caching, interrupt, errors, warnings."""
import threading

import pytest

from engine.executor import Executor
from engine.graph import validate_prompt
from engine.schema import INT, Input, Node, Output, Result
from tests.stub_nodes import STUB_NODES, StubEnv, chain_prompt


@pytest.fixture
def env(tmp_path):
    return StubEnv(tmp_path / "out")


def run(executor, prompt, events=None, cancel=None, pid="p"):
    v = validate_prompt(prompt, executor.registry, executor.env)
    assert v.ok, v.node_errors
    report = (lambda e, d: events.append((e, d))) if events is not None else None
    return executor.execute(v.prompt, v.outputs, prompt_id=pid, cancel=cancel or threading.Event(),
                            report=report)


def ran(env):
    names = [n for _, n in env.runs]
    env.runs.clear()
    return names


def test_runs_needed_nodes_in_order_and_reports_events(env):
    ex = Executor(STUB_NODES, env)
    prompt = chain_prompt(value=3, steps=2)
    prompt["9"] = {"class_type": "Const", "inputs": {"value": 1}}  # feeds no output: never runs
    events = []
    result = run(ex, prompt, events)
    assert result.status == "success"
    assert ran(env) == ["Const", "Slow", "Scale", "SaveNumberImage"]
    kinds = [e for e, _ in events]
    assert kinds[:2] == ["execution_start", "execution_cached"]
    assert kinds[-1] == "execution_success"
    assert kinds.count("progress") == 2 and kinds.count("executing") == 4
    executed = [d for e, d in events if e == "executed"]
    assert executed[0]["node"] == "4" and executed[0]["output"]["images"][0]["type"] == "output"
    assert (env.output_dir / executed[0]["output"]["images"][0]["filename"]).is_file()
    assert result.outputs["4"] == executed[0]["output"]
    assert [m[0] for m in result.messages] == ["execution_start", "execution_cached",
                                               "execution_success"]


def test_cache_reruns_only_changed_node_and_descendants(env):
    ex = Executor(STUB_NODES, env)
    prompt = chain_prompt(value=3)
    run(ex, prompt)
    ran(env)
    events = []
    again = run(ex, prompt, events)  # identical prompt: nothing runs
    assert ran(env) == [] and again.status == "success"
    cached = [d for e, d in events if e == "execution_cached"][0]["nodes"]
    assert cached == ["1", "2", "3", "4"]
    assert [d["node"] for e, d in events if e == "executed"] == ["4"]  # ui replayed
    prompt["3"]["inputs"]["factor"] = 3.0  # one widget downstream of Slow
    events.clear()
    run(ex, prompt, events)
    assert ran(env) == ["Scale", "SaveNumberImage"]
    assert [d for e, d in events if e == "execution_cached"][0]["nodes"] == ["1", "2"]


def test_cache_key_ignores_node_ids(env):
    ex = Executor(STUB_NODES, env)
    run(ex, chain_prompt(value=5))
    ran(env)
    renamed = {str(int(k) + 10): v for k, v in chain_prompt(value=5).items()}
    for node in renamed.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                node["inputs"][name] = [str(int(value[0]) + 10), value[1]]
    run(ex, renamed)
    assert ran(env) == []


def test_fingerprint_nan_always_reruns(env):
    class Volatile(Node):
        OUTPUTS = (Output("n", "NUMBER"),)

        @classmethod
        def fingerprint(cls, env, inputs):
            return float("nan")

        def run(self, ctx):
            ctx.env.record(ctx, "Volatile")
            return (1,)

    registry = {**STUB_NODES, "Volatile": Volatile}
    ex = Executor(registry, env)
    prompt = {"1": {"class_type": "Volatile", "inputs": {}},
              "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}}
    run(ex, prompt)
    run(ex, prompt)
    assert ran(env) == ["Volatile", "Show", "Volatile", "Show"]


def test_reset_forgets_cache(env):
    ex = Executor(STUB_NODES, env)
    run(ex, chain_prompt())
    ex.reset()
    ran(env)
    run(ex, chain_prompt())
    assert len(ran(env)) == 4


def test_interrupt_mid_node_stops_at_next_step(env):
    ex = Executor(STUB_NODES, env)
    cancel = threading.Event()
    events = []

    def report(e, d):
        events.append((e, d))
        if e == "progress" and d["value"] == 2:
            cancel.set()

    v = validate_prompt(chain_prompt(steps=100, delay=0.001), STUB_NODES, env)
    result = ex.execute(v.prompt, v.outputs, prompt_id="p", cancel=cancel, report=report)
    assert result.status == "interrupted"
    assert max(d["value"] for e, d in events if e == "progress") == 2
    interrupted = [d for e, d in events if e == "execution_interrupted"][0]
    assert interrupted["node_id"] == "2" and interrupted["node_type"] == "Slow"
    assert interrupted["executed"] == ["1"]
    assert ran(env) == ["Const", "Slow"]  # Scale and Save never ran
    assert result.messages[-1][0] == "execution_interrupted"


def test_failing_node_reports_error_as_data(env):
    ex = Executor(STUB_NODES, env)
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 4}},
              "2": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "kaput"}},
              "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}
    events = []
    result = run(ex, prompt, events)
    assert result.status == "error"
    err = result.error
    assert err["node_id"] == "2" and err["node_type"] == "Fail"
    assert err["exception_message"] == "kaput" and err["exception_type"] == "builtins.RuntimeError"
    assert any("kaput" in line for line in err["traceback"])
    assert err["current_inputs"] == {"x": ["4"], "message": ["kaput"]}
    assert err["executed"] == ["1"]
    assert events[-1][0] == "execution_error"
    # The failure is not cached; the good upstream node is.
    ran(env)
    run(ex, prompt)
    assert ran(env) == ["Fail"]


def test_warnings_collected(env):
    ex = Executor(STUB_NODES, env)
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 4}},
              "2": {"class_type": "Warn", "inputs": {"x": ["1", 0]}},
              "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}
    result = run(ex, prompt)
    assert result.warnings == [{"node_id": "2", "node_type": "Warn", "message": "suspicious value 4"}]


def test_optional_absent_inputs_get_declared_defaults(env):
    ex = Executor(STUB_NODES, env)
    prompt = {"1": {"class_type": "Pick", "inputs": {"name": "beta", "text": "t"}},
              "2": {"class_type": "ShowText", "inputs": {"text": ["1", 0]}}}
    result = run(ex, prompt)
    assert result.outputs["2"] == {"text": ["beta:t:False:0"]}


def test_wrong_output_count_is_an_error(env):
    class Broken(Node):
        OUTPUT_NODE = True
        INPUTS = (Input("v", INT, default=1),)

        def run(self, ctx, v):
            return Result(outputs=(1, 2), ui={})

    ex = Executor({"Broken": Broken}, env)
    result = run(ex, {"1": {"class_type": "Broken", "inputs": {"v": 1}}})
    assert result.status == "error" and "declared 0" in result.error["exception_message"]
