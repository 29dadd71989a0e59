"""`python -m models.download`, as the README shows it, against a local hub."""
from __future__ import annotations

import shlex

from models import download
from runtime.downloads import HUB_REPO, SETS
from tests.hub_server import allow_local_hub, local_hub
from tests.test_downloads import FOLDER, official_bytes, repo_files
from tests.test_readme_commands import commands


def readme_download_command() -> list[str]:
    """The README's download command, and it comes first in the Weights section."""
    (command,) = [c for c in commands() if "models.download" in c]
    readme = download.PROJECT_ROOT.joinpath("README.md").read_text(encoding="utf-8")
    section = readme.split("## Weights\n", 1)[1].lstrip()
    assert section.startswith(f"`{command}`"), section[:200]
    return shlex.split(command)


def test_the_readme_command_fetches_the_lite_set(tmp_path, monkeypatch, capsys):
    argv = readme_download_command()
    assert argv[:3] == [".venv/bin/python", "-m", "models.download"]
    with local_hub(repo_files()) as hub:
        allow_local_hub(monkeypatch, hub)
        # As written, plus the weights folder moved into tmp_path (the command's only other setting)
        assert download.main(argv[3:] + ["--weights", str(tmp_path)]) == 0, capsys.readouterr().err
        for name in SETS[argv[3]]:
            assert (tmp_path / FOLDER[name] / name).read_bytes() == official_bytes(name)
        out = capsys.readouterr().out
        assert out.count("ok    ") == len(SETS["lite"])
        # A second run finds everything in place and fetches nothing
        gets = len([r for r in hub.requests if r[0] == "GET"])
        assert download.main(argv[3:] + ["--weights", str(tmp_path)]) == 0
        assert len([r for r in hub.requests if r[0] == "GET"]) == gets


def test_failures_exit_1_and_bad_names_exit_2(tmp_path, monkeypatch, capsys):
    with local_hub(repo_files()) as hub:
        allow_local_hub(monkeypatch, hub)
        hub.etags["stage_a.safetensors"] = "0" * 64
        assert download.main(["stage_a.safetensors", "previewer.safetensors", "--weights", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert "FAIL  stage_a.safetensors" in err and "sha256" in err
        assert (tmp_path / "previewer" / "previewer.safetensors").is_file()
        assert not (tmp_path / "stage_a" / "stage_a.safetensors").exists()
        assert download.main(["stage_z.safetensors", "--weights", str(tmp_path)]) == 2
        assert "unknown official file 'stage_z.safetensors'" in capsys.readouterr().err
        assert download.main(["ftp://x/y.safetensors", "--weights", str(tmp_path)]) == 2
    assert HUB_REPO == "stabilityai/stable-cascade"
