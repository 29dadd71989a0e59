"""`python -m models.inspect` describes every kind, LoRAs included, and exits 0 for a readable file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.inspect import main
from tests.catalogue_helpers import KIND_PRESETS, write, write_loras

ROOT = Path(__file__).resolve().parents[1]


def test_inspect_a_lora_says_format_target_rank_alpha_and_tensors(tmp_path, capsys):
    files = write_loras(tmp_path)
    assert main([str(files["prior"])]) == 0
    out = capsys.readouterr().out
    assert "format: LoRA, kohya names" in out and "targets: Stage C (prior)" in out
    assert "rank: 4" in out and "alpha: 8" in out and "tensors: 3" in out and "unknown" not in out
    assert main([str(files["decoder"]), str(files["official"])]) == 0
    out = capsys.readouterr().out
    assert "targets: Stage B (decoder)" in out and "official names" in out and "rank: 3" in out


@pytest.mark.parametrize("kind", sorted(KIND_PRESETS))
def test_inspect_every_kind(tmp_path, capsys, kind):
    path = write(tmp_path / "x.safetensors", kind)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert f"[kind {kind}]" in out and f"size preset: {KIND_PRESETS[kind]}" in out


def test_inspect_junk_exits_1_and_the_command_line_works(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_text("hello")
    lora = write_loras(tmp_path / "loras")["te"]
    run = subprocess.run([sys.executable, "-m", "models.inspect", str(lora)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0 and "targets: text encoder" in run.stdout
    assert main([str(junk)]) == 1
