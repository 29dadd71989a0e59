"""Long graphs: validation, planning and cache signatures walk iteratively; a size limit holds."""
import sys
import threading

import pytest

from engine.cache import signatures
from engine.executor import Executor
from engine.graph import MAX_PROMPT_NODES, validate_prompt
from tests.stub_nodes import STUB_NODES, StubEnv, long_chain_prompt


@pytest.fixture
def env(tmp_path):
    return StubEnv(tmp_path / "out")


@pytest.fixture
def shallow_stack():
    """Run with a recursion limit far below the chain length: any per-link recursion fails."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_limit_leaves_room_for_real_graphs():
    assert 900 < MAX_PROMPT_NODES < 100_000


def test_900_node_chain_validates_and_runs(env):
    prompt = long_chain_prompt(900, value=5)
    result = validate_prompt(prompt, STUB_NODES, env)
    assert result.ok and result.outputs == ["900"], result.error
    run = Executor(STUB_NODES, env).execute(result.prompt, result.outputs, prompt_id="p",
                                            cancel=threading.Event())
    assert run.status == "success", run.error
    assert run.outputs["900"] == {"text": ["5.0"]}
    assert len(run.executed) == 900 and run.executed[0] == "1" and run.executed[-1] == "900"


def test_chain_walks_do_not_recurse_per_link(env, shallow_stack):
    prompt = long_chain_prompt(600)
    result = validate_prompt(prompt, STUB_NODES, env)
    assert result.ok
    sigs = signatures(result.prompt, STUB_NODES, env, roots=result.outputs)
    assert len(sigs) == 600 and len(set(sigs.values())) == 600


def test_error_at_the_root_of_a_long_chain_names_the_node_and_the_output(env, shallow_stack):
    prompt = long_chain_prompt(600)
    prompt["1"]["inputs"]["value"] = 10**6  # above Const's max
    result = validate_prompt(prompt, STUB_NODES, env)
    assert result.error["type"] == "prompt_outputs_failed_validation"
    assert list(result.node_errors) == ["1"]
    assert result.node_errors["1"]["dependent_outputs"] == ["600"]


def test_cycle_in_a_long_chain_is_a_node_error(env, shallow_stack):
    prompt = long_chain_prompt(500)
    prompt["1"] = {"class_type": "Scale", "inputs": {"x": ["499", 0], "factor": 1.0,
                                                     "mode": "mul"}}
    result = validate_prompt(prompt, STUB_NODES, env)
    assert not result.ok
    kinds = {r["type"] for e in result.node_errors.values() for r in e["errors"]}
    assert kinds == {"dependency_cycle"}


def test_signatures_still_change_downstream_only(env):
    prompt = validate_prompt(long_chain_prompt(50), STUB_NODES, env).prompt
    before = signatures(prompt, STUB_NODES, env)
    prompt["25"]["inputs"]["factor"] = 2.0
    after = signatures(prompt, STUB_NODES, env)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {str(i) for i in range(25, 51)}


def test_oversized_prompt_is_refused_naming_the_limit(env):
    result = validate_prompt(long_chain_prompt(MAX_PROMPT_NODES + 1), STUB_NODES, env)
    assert result.error["type"] == "prompt_too_large"
    assert str(MAX_PROMPT_NODES) in result.error["message"]
    assert result.error["extra_info"]["limit"] == MAX_PROMPT_NODES
    assert validate_prompt(long_chain_prompt(MAX_PROMPT_NODES), STUB_NODES, env).ok
