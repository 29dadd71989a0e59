"""Declared ranges are runnable: every numeric input of every node, at its declared min and max, validates
and runs (tiny demo models), and the loaders offer only dtypes their network runs in.

The pipeline is the shipped default workflow (plus a LoRA on Stage C and an image-to-image branch, so
every node class is in it), shrunk to 128 px and one or two steps; one input at a time is set to an
extreme. Where two extremes would only be too slow or too big together (8192 x 8192) the other side
stays at its minimum: the size code path is the same, and memory admission covers the product.
"""
from __future__ import annotations

import copy

import pytest
from PIL import Image

import cli
from engine.graph import validate_prompt
from engine.schema import FLOAT, INT
from engine.workflow import document_to_prompt
from models.sampling import SAMPLERS, SCHEDULERS, sample
from nodes.registry import NODES as ALL_NODES
from nodes.sampling_inputs import SEED_MAX
from tests.nodes_helpers import demo_env, node_id, small_default, tmp_config

# Extremes run together in a few prompts: all minimums; all maximums with the image kept one side
# thin; the other side's maximum; the largest batch. Max steps (1000 network calls per sampler, minutes
# on a shared CPU) run through every sampler with a cheap eps in test_max_steps_and_tiny_denoise….
GROUPS = {
    "all_min": ("min", {}),
    "all_max": ("max", {("StageCSampler", "height"): 128, ("StageCSampler", "batch_size"): 1}),
    "height_max": ("min", {("StageCSampler", "height"): "max"}),
    "batch_max": ("min", {("StageCSampler", "batch_size"): "max"}),
}
SKIPPED = {"steps"}
# Our own node classes. ComfyUI's family (nodes/comfy/) keeps ComfyUI's ranges (16384-px sides, batches of
# 4096) whose maxima together are not runnable by design, and needs KSampler to reach an output; its classes
# test their own semantics and ranges in tests/test_comfy_*.py.
NODES = {name: cls for name, cls in ALL_NODES.items() if not cls.__module__.startswith("nodes.comfy")}


def numeric_inputs() -> list[tuple[str, object]]:
    found = []
    for class_type, cls in NODES.items():
        for inp in cls.INPUTS:
            if inp.type in (INT, FLOAT):
                assert inp.min is not None and inp.max is not None, f"{class_type}.{inp.name} has no declared range"
                found.append((class_type, inp))
    return found


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    config = tmp_config(tmp_path_factory.mktemp("ranges"))
    env = demo_env(config)
    doc = small_default(env, steps_c=1, steps_b=1, size=128)
    prompt = document_to_prompt(doc)
    c_loader, c_sampler = node_id(doc, "LoadStageC"), node_id(doc, "StageCSampler")
    te_loader = node_id(doc, "LoadTextEncoder")
    Image.new("RGB", (72, 40), (200, 30, 90)).save(config.input_dir / "in.png")
    prompt.update({
        "lora": {"class_type": "LoRA", "inputs": {
            "stage_c": [c_loader, 0], "text_encoder": [te_loader, 0],
            "lora_name": env.weight_files("loras")[0], "strength_model": 1.0, "strength_text": 1.0}},
        "img": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
        "eff": {"class_type": "LoadEffNet", "inputs": {"file": env.weight_files("effnet")[0], "dtype": "auto"}},
        "enc": {"class_type": "EffNetEncode", "inputs": {"effnet": ["eff", 0], "image": ["img", 0]}},
        "cv": {"class_type": "LoadCLIPVision", "inputs": {"file": env.weight_files("clip_vision")[0], "dtype": "auto"}},
        "ip": {"class_type": "ImagePrompt", "inputs": {"clip_vision": ["cv", 0], "image": ["img", 0], "strength": 1.0}},
        "i2i": {"class_type": "StageCSampler", "inputs": {
            **copy.deepcopy(prompt[c_sampler]["inputs"]), "stage_c": ["lora", 0], "init": ["enc", 0],
            "denoise": 0.5, "image_prompt": ["ip", 0]}},
        "aenc": {"class_type": "StageAEncode", "inputs": {"stage_a": [node_id(doc, "LoadStageA"), 0],
                                                           "image": ["img", 0]}},
        "adec": {"class_type": "StageADecode", "inputs": {"stage_a": [node_id(doc, "LoadStageA"), 0],
                                                           "stage_b_latent": ["aenc", 0]}},
        "prev": {"class_type": "PreviewImage", "inputs": {"images": ["adec", 0]}},
    })
    prompt[c_sampler]["inputs"]["stage_c"] = ["lora", 0]
    prompt.update({  # the three ControlNet hints, chained into the image-to-image sampler
        **{f"cn_{k}": {"class_type": "LoadControlNet", "inputs": {"file": f"demo_{k}.safetensors", "dtype": "auto"}}
           for k in ("canny", "inpainting", "super_resolution")},
        "h_canny": {"class_type": "CannyHint", "inputs": {"image": ["img", 0], "low_threshold": 100,
                                                          "high_threshold": 200, "resolution": 224}},
        "h_inpainting": {"class_type": "InpaintingHint", "inputs": {"image": ["img", 0], "mask": ["img", 1]}},
        "h_super_resolution": {"class_type": "SuperResolutionHint", "inputs": {"effnet": ["eff", 0],
                                                                               "image": ["img", 0]}},
    })
    previous = None
    for k in ("canny", "inpainting", "super_resolution"):
        prompt[f"ap_{k}"] = {"class_type": "ApplyControlNet", "inputs": {
            "control_net": [f"cn_{k}", 0], "image": [f"h_{k}", 0], "strength": 1.0, "start": 0.0, "end": 1.0,
            **({"control": previous} if previous else {})}}
        previous = [f"ap_{k}", 0]
    prompt["i2i"]["inputs"]["control"] = previous
    b_sampler = node_id(doc, "StageBSampler")
    prompt.update({  # the image-to-image branch has its own Stage B → Stage A → preview
        "b2": {"class_type": "StageBSampler",
               "inputs": {**copy.deepcopy(prompt[b_sampler]["inputs"]), "stage_c_latent": ["i2i", 0]}},
        "a2": {"class_type": "StageADecode", "inputs": {"stage_a": [node_id(doc, "LoadStageA"), 0],
                                                         "stage_b_latent": ["b2", 0]}},
        "p2": {"class_type": "PreviewImage", "inputs": {"images": ["a2", 0]}},
    })
    return config, env, prompt


def test_every_node_class_is_covered(base):
    _, _, prompt = base
    assert {n["class_type"] for n in prompt.values()} >= set(NODES) - {"LoRAStageB"}


@pytest.mark.slow
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_declared_extremes_validate_and_run(base, group):
    config, env, prompt = base
    default_end, overrides = GROUPS[group]
    prompt = copy.deepcopy(prompt)
    covered = set()
    for class_type, inp in numeric_inputs():
        if inp.name in SKIPPED:
            continue
        end = overrides.get((class_type, inp.name), default_end)
        value = end if not isinstance(end, str) else getattr(inp, end)
        for node in prompt.values():
            if node["class_type"] == class_type:
                node["inputs"][inp.name] = value
                covered.add((class_type, inp.name))
    assert covered >= {(c, i.name) for c, i in numeric_inputs()
                       if c != "LoRAStageB" and i.name not in SKIPPED}
    checked = validate_prompt(copy.deepcopy(prompt), NODES, env)
    assert checked.ok, checked.node_errors
    code, images = cli.run_workflow(prompt, config, env, NODES)
    assert code == 0 and images
    c = next(n["inputs"] for n in prompt.values() if n["class_type"] == "StageCSampler" and "init" not in n["inputs"])
    saved = [Image.open(p).size for p in images if p.parent == config.output_dir]
    assert saved == [(c["width"], c["height"])] * c["batch_size"]  # the text-to-image chain ran at the extreme
    assert {Image.open(p).size for p in images if p.parent == config.temp_dir} == {(72, 40)}


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_max_steps_and_tiny_denoise_run_every_sampler(sampler, scheduler):
    """The samplers' own extremes: max steps, shift at both ends, denoise down to 1e-12 (once 1e12 steps)."""
    import torch

    steps_max = {i.name: i for i in NODES["StageCSampler"].INPUTS}["steps"].max
    shifts = {i.name: i for i in NODES["StageCSampler"].INPUTS}["shift"]

    def eps(x, r):
        return 0.5 * x + r.view(-1, 1, 1, 1)

    init = torch.zeros(2, 1, 2, 2)
    for steps, shift, denoise in ((steps_max, 2.0, 1.0), (1, shifts.min, 1.0), (1, shifts.max, 1.0),
                                  (steps_max, shifts.min, 1e-12), (2, shifts.max, 0.01)):
        out = sample(eps, (2, 1, 2, 2), sampler=sampler, scheduler=scheduler, steps=steps, shift=shift,
                     denoise=denoise, init=None if denoise == 1.0 else init, seeds=[0, SEED_MAX],
                     device="cpu", dtype=torch.float32)
        assert torch.isfinite(out).all(), (steps, shift, denoise)


def test_shift_zero_is_refused_at_validation(base):
    _, env, prompt = base
    prompt = copy.deepcopy(prompt)
    sampler = next(i for i, n in prompt.items() if n["class_type"] == "StageBSampler")
    prompt[sampler]["inputs"]["shift"] = 0.0
    checked = validate_prompt(prompt, NODES, env)
    (reason,) = checked.node_errors[sampler]["errors"]
    assert reason["type"] == "value_smaller_than_min" and reason["extra_info"]["input_name"] == "shift"


def test_stage_c_loader_offers_no_fp16_and_validation_lists_the_choices(base):
    _, env, prompt = base
    from engine.catalogue import input_entry

    dtype = {i.name: i for i in NODES["LoadStageC"].INPUTS}["dtype"]
    assert input_entry(dtype, env)[0] == ["auto", "bf16", "fp32"]
    other = {i.name: i for i in NODES["LoadStageB"].INPUTS}["dtype"]
    assert "fp16" in input_entry(other, env)[0]  # Stage B runs in fp16 (tested below), so it is offered
    prompt = copy.deepcopy(prompt)
    loader = next(i for i, n in prompt.items() if n["class_type"] == "LoadStageC")
    prompt[loader]["inputs"]["dtype"] = "fp16"
    checked = validate_prompt(prompt, NODES, env)
    (reason,) = checked.node_errors[loader]["errors"]
    assert reason["type"] == "value_not_in_list" and "'auto', 'bf16', 'fp32'" in reason["details"]


@pytest.mark.parametrize("loader", ["LoadStageB", "LoadStageA", "LoadTextEncoder", "LoadEffNet",
                                    "LoadPreviewer", "LoadStageC"])
def test_every_offered_dtype_runs(base, loader):
    config, env, prompt = base
    from engine.catalogue import input_entry

    dtype = {i.name: i for i in NODES[loader].INPUTS}["dtype"]
    for choice in input_entry(dtype, env)[0]:
        if choice in ("auto", "bf16"):
            continue  # the other cases run these
        run = copy.deepcopy(prompt)
        for n in run.values():
            if n["class_type"] == loader:
                n["inputs"]["dtype"] = choice
        code, _ = cli.run_workflow(run, config, env, NODES)
        assert code == 0, (loader, choice)
