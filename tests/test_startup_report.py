"""The start-up report (runtime/weights.py guidance) reads the catalogue: what each file holds, by its keys."""
from __future__ import annotations

import logging

from runtime.env import Env
from runtime.weights import guidance, missing_official
from tests.catalogue_helpers import write, write_loras
from tests.nodes_helpers import tmp_config


def _line(report: str, folder: str) -> str:
    return next(ln for ln in report.splitlines() if ln.startswith(f"  {folder}/:"))


def test_junk_misplaced_and_missing_folders_are_said_exactly(tmp_path):
    weights = tmp_path / "weights"
    (weights / "stage_c").mkdir(parents=True)
    (weights / "stage_c" / "stage_c_bf16.safetensors").write_text("a text file renamed .safetensors")
    write(weights / "stage_c" / "stage_c_lite_bf16.safetensors", "stage_b")  # Stage B under a Stage C name
    (weights / "stage_b").mkdir()
    report = guidance(weights)
    stage_c = _line(report, "stage_c")
    assert "stage_c_bf16.safetensors [PROBLEM: not safetensors:" in stage_c
    assert ("stage_c_lite_bf16.safetensors [Stage B (tiny, float32); PROBLEM: wrong folder: this file holds "
            "Stage B, not a Stage C; move it to stage_b/; offered by no loader]") in stage_c
    assert _line(report, "stage_b") == "  stage_b/: (empty)"
    assert _line(report, "stage_a") == "  stage_a/: (no such folder)"
    # The junk file no longer silences the missing-Stage-C warning; its place is named as unusable.
    assert {o.folder for o in missing_official(weights)} >= {"stage_c", "stage_b"}
    official = next(ln for ln in report.splitlines() if ln.strip().startswith(str(weights.resolve() / "stage_c"
                                                                                   / "stage_c_bf16.safetensors")))
    assert "not usable" in official


def test_a_missing_weights_folder_is_one_line_not_seven_empty_ones(tmp_path, caplog):
    config = tmp_config(tmp_path, weights_dir=tmp_path / "nowhere", demo=False)
    with caplog.at_level(logging.INFO, logger="cascade.weights"):
        Env(config)
    (record,) = [r for r in caplog.records if r.name == "cascade.weights"]
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert text.splitlines()[0].startswith(f"Weights folder {(tmp_path / 'nowhere').resolve()} does not exist")
    assert "(empty)" not in text and "(no such folder)" not in text
    assert "stage_c_bf16.safetensors" in text  # still says what to download and where


def test_real_files_satisfy_their_kind_and_loras_show_their_target(tmp_path):
    weights = tmp_path / "weights"
    write(weights / "stage_c" / "renamed.safetensors", "stage_c")
    files = write_loras(weights / "loras")
    report = guidance(weights)
    assert "stage_c" not in {o.folder for o in missing_official(weights)}
    assert _line(report, "stage_c") == "  stage_c/: renamed.safetensors [Stage C (tiny, float32)]"
    loras = _line(report, "loras")
    assert f"{files['decoder'].name} [LoRA for Stage B (decoder), kohya, rank 2, alpha 1, 3 tensors]" in loras
    assert f"{files['sd15'].name} [LoRA for SD1.5/SDXL, not Stable Cascade, 3 tensors]" in loras


def test_missing_files_name_the_one_command_that_fetches_them(tmp_path):
    from runtime.weights import guidance

    (tmp_path / "w").mkdir()
    assert "python -m models.download lite" in guidance(tmp_path / "w")
