"""Memory admission: a job whose activations cannot fit is refused at validation, naming the limit and
the largest size that fits; the official sizes are admitted; the estimate stays above measured peaks."""
from __future__ import annotations

import copy

import pytest

from engine.graph import validate_prompt
from engine.workflow import document_to_prompt
from models.stage_a import STAGE_A_PRESETS
from models.stage_b import STAGE_B_PRESETS
from models.stage_c import STAGE_C_PRESETS
from runtime import admission
from runtime.admission import GIB, Job, job_bytes
from nodes.registry import NODES
from tests.nodes_helpers import demo_env, node_id, small_default, tmp_config

MIB = 1 << 20
# Peaks measured with bench/activation_peaks.py (kind, preset, latent side, guided batch) -> MiB.
MEASURED = [("stage_c", "lite", 24, 41), ("stage_c", "lite", 48, 260), ("stage_b", "lite", 32, 58),
            ("stage_b", "lite", 64, 26), ("stage_a", "full", 64, 3), ("stage_a", "full", 128, 132)]
PRESETS = {"stage_c": STAGE_C_PRESETS, "stage_b": STAGE_B_PRESETS, "stage_a": STAGE_A_PRESETS}


def job(kind: str, preset: str, side: int, batch: int = 1, itemsize: int | None = None) -> Job:
    size = {"stage_a": 2, "stage_b": 2, "stage_c": 2}[kind] if itemsize is None else itemsize
    return Job(kind, PRESETS[kind][preset], size, side, side, batch, kind != "stage_a")


@pytest.mark.parametrize("kind,preset,latent,mib", MEASURED)
def test_estimate_stays_above_measured_peaks(kind, preset, latent, mib):
    pixels = {"stage_c": round(latent * 42.67) - 1, "stage_b": latent * 4, "stage_a": latent * 4}[kind]
    itemsize = 4 if kind == "stage_a" else 2
    estimate = job_bytes(job(kind, preset, pixels, itemsize=itemsize))
    assert mib * MIB <= estimate <= max(8 * mib * MIB, 1 * GIB)  # conservative, not absurd


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return demo_env(tmp_config(tmp_path_factory.mktemp("admission")))


def prompt_of(env, *, size: int, batch: int, full: bool = True) -> dict:
    doc = small_default(env, steps_c=1, steps_b=1, size=128)
    c = doc["nodes"][node_id(doc, "StageCSampler")]["inputs"]
    c.update(width=size, height=size, batch_size=batch)
    prompt = document_to_prompt(doc)
    if full:  # a file that cannot be identified counts as the largest official model
        for node in prompt.values():
            if node["class_type"] in ("LoadStageC", "LoadStageB"):
                node["inputs"]["file"] = "unknown.safetensors"
    for node in prompt.values():  # what validate_prompt hands the hook: each node's class beside it
        node["class"] = NODES[node["class_type"]]
    return prompt


def on_machine(monkeypatch, env, total_gib: float, budget_gib: float) -> None:
    monkeypatch.setattr(admission, "device_total", lambda device: int(total_gib * GIB))
    monkeypatch.setattr(env.models, "budget_bytes", int(budget_gib * GIB))


def test_official_lite_1024_batch_4_fits_a_24_gib_machine(env, monkeypatch):
    on_machine(monkeypatch, env, 24, 24 * 0.4)
    lite = prompt_of(env, size=1024, batch=4, full=False)
    found = {n["class_type"]: n for n in lite.values()}
    jobs = admission.jobs(env, lite)
    assert {j.kind for _, _, j in jobs} == {"stage_c", "stage_b", "stage_a"}
    assert all((j.width, j.height, j.batch) == (1024, 1024, 4) for _, _, j in jobs)
    # With the real lite configs (what detection finds in stage_c_lite_bf16 files) it still fits:
    for kind in ("stage_c", "stage_b"):
        assert job_bytes(job(kind, "lite", 1024, 4)) < 14 * GIB
    assert job_bytes(job("stage_a", "full", 1024, 4, itemsize=4)) < 14 * GIB
    assert env.admit(lite) == {}
    assert found["StageCSampler"]["inputs"]["batch_size"] == 4


def test_8192_batch_64_is_refused_naming_limit_and_largest_size(env, monkeypatch):
    on_machine(monkeypatch, env, 24, 24 * 0.4)
    prompt = prompt_of(env, size=8192, batch=64)
    problems = env.admit(prompt)
    c = node_id_of(prompt, "StageCSampler")
    assert set(problems) >= {c, node_id_of(prompt, "StageBSampler"), node_id_of(prompt, "StageADecode")}
    text = problems[c]["batch_size"]
    assert "limit 14.4 GiB" in text and "at batch 1 the largest square size that fits is" in text
    side = int(text.rsplit(" ", 1)[1].split("×")[0])
    assert 1024 <= side < 8192
    # The size it names does fit, and one step up does not (for the job that named it).
    named = Job("stage_c", STAGE_C_PRESETS["full"], 2, side, side, 1, True)
    limit = admission.limit_bytes("cpu", env.models.budget_bytes)
    assert job_bytes(named) <= limit < job_bytes(Job("stage_c", STAGE_C_PRESETS["full"], 2, side + 64, side + 64,
                                                     1, True))
    # A bigger machine admits the same prompt.
    on_machine(monkeypatch, env, 1 << 20, 24)
    assert env.admit(prompt) == {}


def node_id_of(prompt: dict, class_type: str) -> str:
    (found,) = [i for i, n in prompt.items() if n["class_type"] == class_type]
    return found


def test_linked_sizes_and_init_images_are_left_to_run_time(env, monkeypatch):
    on_machine(monkeypatch, env, 24, 24 * 0.4)
    prompt = prompt_of(env, size=8192, batch=64)
    c = node_id_of(prompt, "StageCSampler")
    prompt[c]["inputs"]["init"] = ["999", 0]  # the init image's size decides: unknown at validation
    assert env.admit(copy.deepcopy(prompt)) == {}


def test_validate_prompt_refuses_through_the_engine_hook(env, monkeypatch):
    """Validation refuses through env.admit even with the tiny demo models: activations dominate."""
    on_machine(monkeypatch, env, 24, 24 * 0.4)
    checked = validate_prompt(prompt_of(env, size=8192, batch=64, full=False), NODES, env)
    assert not checked.ok
    reasons = [r for info in checked.node_errors.values() for r in info["errors"]]
    assert any("largest square size that fits" in (r.get("details", "") + r.get("message", "")) for r in reasons)
    ok = validate_prompt(prompt_of(env, size=1024, batch=4, full=False), NODES, env)
    assert ok.ok, ok.node_errors


def test_malformed_prompts_never_raise(env):
    junk = [{}, {"1": "x"}, {"1": {"class_type": "StageBSampler", "inputs": {"stage_c_latent": ["1", 0]}}},
            {"1": {"class_type": "StageADecode", "inputs": {"stage_b_latent": ["2", 0], "stage_a": ["3", 0]}},
             "2": {"class_type": "StageBSampler", "inputs": {"stage_c_latent": ["2", 0]}},
             "3": {"class_type": "LoadStageA", "inputs": {"file": "a\x00b", "dtype": "fp64"}}},
            {"1": {"class_type": "StageCSampler", "inputs": {"width": "wide", "height": None, "stage_c": [1]}}}]
    for prompt in junk:
        assert env.admit(prompt) == {}


def test_a_24_gib_card_runs_the_official_batch_4_its_models_leave_room_for(env, monkeypatch):
    """CUDA's auto budget is 80 % of the card; reserving all of it for models would leave 4.8 GiB and
    refuse Stage A's ~6.5 GiB decode of 1024² batch 4, although the lite models take ~5 GiB."""
    on_machine(monkeypatch, env, 24, 24 * 0.8)
    checked = validate_prompt(prompt_of(env, size=1024, batch=4, full=False), NODES, env)
    assert checked.ok, checked.node_errors
    lite_models = 5 * GIB  # lite C + lite B + text encoder (bf16) + Stage A (fp32), from the file sizes
    assert admission.limit_bytes("cpu", int(24 * 0.8 * GIB), lite_models) == 19 * GIB
    assert admission.limit_bytes("cpu", int(24 * 0.8 * GIB), 30 * GIB) == int(24 * GIB - int(24 * 0.8 * GIB))


def test_a_file_named_by_several_loaders_is_reserved_once(env):
    """An all-in-one checkpoint feeds Load Stage C and Load Text Encoder: one file in memory terms."""
    doc = small_default(env, steps_c=1, steps_b=1, size=128)
    prompt = document_to_prompt(doc)
    stage_c = next(n for n in prompt.values() if n["class_type"] == "LoadStageC")
    one = admission.prompt_models_bytes(env, prompt)
    twice = dict(prompt, extra={"class_type": "LoadStageC", "inputs": dict(stage_c["inputs"])})
    assert admission.prompt_models_bytes(env, twice) == one
