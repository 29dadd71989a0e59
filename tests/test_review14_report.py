"""Review of issue 14: the start-up report of a folder with many files stays short."""
from __future__ import annotations

from runtime import weights
from runtime.weights import guidance

MAX_LISTED = getattr(weights, "MAX_LISTED", 40)


def test_a_folder_of_many_files_is_summed_up_not_listed_whole(tmp_path):
    folder = tmp_path / "stage_c"
    folder.mkdir()
    for i in range(MAX_LISTED + 60):
        (folder / f"f{i:04d}.safetensors").write_bytes(b"junk")
    line = next(x for x in guidance(tmp_path).splitlines() if x.startswith("  stage_c/"))
    assert line.count(".safetensors [PROBLEM") == MAX_LISTED
    assert "and 60 more (60 with problems" in line
    assert "f0000.safetensors" in line and "f0099.safetensors" not in line
