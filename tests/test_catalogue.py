"""The catalogue (runtime/catalogue.py): kinds from keys, named problems, listings and node combos."""
from __future__ import annotations

import shutil

import pytest

from nodes.comfy.model_patches import LoraLoader
from nodes.loaders import LoadStageC
from nodes.lora import LoRA, LoRAStageB
from runtime import catalogue
from runtime.env import Env
from tests.catalogue_helpers import KIND_PRESETS, write, write_all_in_one, write_loras
from tests.nodes_helpers import tmp_config


@pytest.mark.parametrize("kind", sorted(KIND_PRESETS))
def test_every_kind_is_named_by_its_keys_not_its_name(tmp_path, kind):
    path = write(tmp_path / "model.safetensors", kind)  # a name that says nothing
    info = catalogue.describe(path)
    assert info.kinds == (kind,) and info.problems == ()
    (part,) = info.parts
    assert part.preset == KIND_PRESETS[kind] and part.dtype == "float32" and part.loadable
    assert info.size == path.stat().st_size and info.lora is None


def test_all_in_one_lists_its_parts(tmp_path):
    info = catalogue.describe(write_all_in_one(tmp_path / "stage_b.safetensors"))
    assert info.format == "all-in-one"
    assert info.kinds == ("stage_c", "text_encoder", "effnet", "previewer")
    assert {p.kind for p in info.parts} == set(info.kinds)


def test_loras_are_classified_by_target_from_their_keys(tmp_path):
    files = write_loras(tmp_path)
    got = {name: catalogue.describe(path).lora for name, path in files.items()}
    assert got["prior"].targets == ("stage_c",) and got["prior"].ranks == (4,) and got["prior"].alpha == "8"
    assert got["decoder"].targets == ("stage_b",)  # named prior_style.safetensors: the keys decide
    assert got["te"].targets == ("text_encoder",)
    assert got["official"].targets == ("stage_c",) and got["official"].formats == ("official",)
    assert got["sd15"].foreign == "SD1.5/SDXL"
    assert [n for n, i in got.items() if i.fits("stage_c")] == ["prior", "te", "official"]
    assert [n for n, i in got.items() if i.fits("stage_b")] == ["decoder"]


def test_problems_are_named(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_text("a text file renamed .safetensors\n")
    info = catalogue.describe(junk)
    assert info.format == "not safetensors" and info.kinds == () and info.problems[0].startswith("not safetensors")
    whole = write(tmp_path / "whole.safetensors", "stage_a").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole[: len(whole) // 2])  # the header promises more bytes than the file has
    info = catalogue.describe(cut)
    assert info.format == "truncated" and info.kinds == () and "truncated" in info.problems[0]
    part = tmp_path / "stage_c_bf16.safetensors.incomplete"
    part.write_bytes(whole)
    assert catalogue.describe(part).format == "partial download"


def test_a_misplaced_file_is_named_and_offered_only_where_it_belongs(tmp_path):
    weights = tmp_path / "weights"
    write(weights / "stage_c" / "stage_c_bf16.safetensors", "stage_b")
    (weights / "stage_c" / "junk.safetensors").write_text("not a model")
    (weights / "stage_c" / "big.safetensors.part").write_bytes(b"\0" * 64)
    write(weights / "stage_c" / "real.safetensors", "stage_c")
    found = {e.name: e for e in catalogue.entries(weights, "stage_c")}
    assert set(found) == {"stage_c_bf16.safetensors", "junk.safetensors", "big.safetensors.part", "real.safetensors"}
    assert found["stage_c_bf16.safetensors"].problems == (
        "wrong folder: this file holds Stage B, not a Stage C; move it to stage_b/",)
    assert found["big.safetensors.part"].problems[0].startswith("partial download")
    assert found["real.safetensors"].problems == ()
    env = Env(tmp_config(tmp_path, demo=False))
    assert env.weight_files("stage_c") == ["real.safetensors"]
    assert env.weight_files("stage_b") == []  # the misplaced one is not picked up from stage_c/ either


def test_combos_come_from_the_catalogue_and_see_new_files_without_restart(tmp_path):
    weights = tmp_path / "weights"
    files = write_loras(weights / "loras")
    write(weights / "controlnet" / "canny.safetensors", "controlnet")
    write(weights / "controlnet" / "not_a_controlnet.safetensors", "effnet")
    write_all_in_one(weights / "checkpoints" / "stable_cascade_stage_c.safetensors")
    env = Env(tmp_config(tmp_path, demo=False))
    names = {k: p.name for k, p in files.items()}
    stage_c_node = next(i for i in LoRA.INPUTS if i.name == "lora_name")
    stage_b_node = next(i for i in LoRAStageB.INPUTS if i.name == "lora_name")
    comfy_node = next(i for i in LoraLoader.INPUTS if i.name == "lora_name")
    assert stage_c_node.choice_list(env) == sorted([names["prior"], names["te"], names["official"]])
    assert stage_b_node.choice_list(env) == [names["decoder"]]
    assert comfy_node.choice_list(env) == sorted(names.values())  # ComfyUI's loader lists every LoRA, as ComfyUI
    assert env.weight_files("controlnet") == ["canny.safetensors"]
    # Our Stage C loader finds the all-in-one in ComfyUI's checkpoints/ by its keys.
    assert next(i for i in LoadStageC.INPUTS if i.name == "file").choice_list(env) == [
        "checkpoints/stable_cascade_stage_c.safetensors"]
    # A new file appears on the next listing (stat-based), and a replaced one is re-described.
    shutil.copy(files["decoder"], weights / "loras" / "more_b.safetensors")
    assert stage_b_node.choice_list(env) == ["more_b.safetensors", names["decoder"]]
    write(weights / "loras" / "more_b.safetensors", "stage_a")  # same name, other content
    assert stage_b_node.choice_list(env) == [names["decoder"]]


def test_lora_nodes_refuse_a_lora_for_the_other_model_by_name(tmp_path):
    files = write_loras(tmp_path / "weights" / "loras")
    env = Env(tmp_config(tmp_path, demo=False))
    msg = LoRAStageB.check(env, {"lora_name": files["prior"].name})["lora_name"]
    assert "Stage B" in msg and "LoRA for Stage C (prior)" in msg
    assert "SD1.5/SDXL" in LoRA.check(env, {"lora_name": files["sd15"].name})["lora_name"]
    assert LoRA.check(env, {"lora_name": files["prior"].name}) == {}
