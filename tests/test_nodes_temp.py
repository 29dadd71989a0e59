"""wipe_temp: PreviewImage's folder is emptied at start-up, without following links or leaving it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.temp_files import wipe_temp
from tests.nodes_helpers import tmp_config


def test_wipes_previews_and_subfolders_but_not_link_targets(tmp_path):
    config = tmp_config(tmp_path)
    temp = Path(config.temp_dir)
    (temp / "preview_ab12cd34_00001_.png").write_bytes(b"png")
    (temp / "sub" / "deeper").mkdir(parents=True)
    (temp / "sub" / "deeper" / "x.png").write_bytes(b"png")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    os.symlink(outside, temp / "link_to_dir")
    os.symlink(outside / "keep.txt", temp / "link_to_file")
    os.symlink(outside, temp / "sub" / "inner_link")
    sibling = tmp_path / "sibling.txt"
    sibling.write_text("sibling")

    assert wipe_temp(config) == 4
    assert temp.is_dir() and list(temp.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep" and sibling.read_text() == "sibling"
    assert wipe_temp(config) == 0  # idempotent


def test_missing_temp_folder_is_fine(tmp_path):
    config = tmp_config(tmp_path, temp_dir=tmp_path / "nope")
    assert wipe_temp(config) == 0 and not (tmp_path / "nope").exists()


@pytest.mark.parametrize("which", ["output", "home", "parent_of_input"])
def test_refuses_a_temp_folder_that_is_or_holds_another_folder(tmp_path, monkeypatch, which):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    config = tmp_config(tmp_path / "app")
    temp = {"output": Path(config.output_dir), "home": home, "parent_of_input": tmp_path / "app"}[which]
    (temp / "mine.txt").write_text("mine")
    config = config.with_overrides(temp_dir=temp)
    assert wipe_temp(config) == 0
    assert (temp / "mine.txt").read_text() == "mine"


def test_temp_folder_given_through_a_link_is_emptied_in_place(tmp_path):
    real = tmp_path / "real_temp"
    real.mkdir()
    (real / "preview.png").write_bytes(b"png")
    os.symlink(real, tmp_path / "temp_link")
    config = tmp_config(tmp_path / "app", temp_dir=tmp_path / "temp_link")
    assert wipe_temp(config) == 1
    assert real.is_dir() and not list(real.iterdir()) and (tmp_path / "temp_link").is_symlink()
