"""Extra read-only model folders: a ComfyUI install (--comfy-models) and ComfyUI's extra_model_paths.yaml
(base_path, multi-line paths, legacy keys) list and load through our loaders and ComfyUI's, nothing is
written there, and path tricks (in the yaml or in a name) are refused; a missing folder is reported."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import torch

from config import Config
from engine.schema import RunContext
from nodes.comfy.loaders import CheckpointLoaderSimple
from nodes.loaders import LoadStageC
from runtime.env import Env
from tests.comfy_folders_helpers import tiny_models, write_comfy_layout
from tests.loading_helpers import file_state, save
from tests.nodes_helpers import tmp_config


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with (mtime, size): equal before and after means nothing was written."""
    return {p.relative_to(root).as_posix(): (p.lstat().st_mtime_ns, p.lstat().st_size) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """A ComfyUI install (ComfyUI/models/…) written from tiny random networks, plus a linked file out."""
    tmp = tmp_path_factory.mktemp("roots")
    models = tiny_models()
    files = write_comfy_layout(tmp / "ComfyUI" / "models", models)
    outside = save(tmp / "secret" / "stage_c.safetensors", file_state("stage_c", models["stage_c"]))
    (tmp / "ComfyUI" / "models" / "checkpoints" / "linked_out.safetensors").symlink_to(outside)
    return tmp, models, files


def env_for(tmp: Path, **roots) -> Env:
    return Env(tmp_config(tmp / "app", demo=False, **roots))


def test_comfy_install_lists_and_loads_read_only(install):
    tmp, models, files = install
    before = tree_state(tmp / "ComfyUI")
    env = env_for(tmp, comfy_models=(tmp / "ComfyUI",))  # the install root: its models/ is found
    # ComfyUI's loaders: names as ComfyUI lists them; the junk file and the link out are not there.
    assert env.comfy_files("checkpoints") == ["stable_cascade_stage_b.safetensors",
                                              "stable_cascade_stage_c.safetensors", "stage_b_bare.safetensors"]
    assert env.comfy_files("unet") == ["cascade/stage_c.safetensors", "stage_b.safetensors"]
    assert env.comfy_files("loras") == ["style.safetensors"]
    assert env.weight_files("loras") == ["style.safetensors"]
    assert "canny.safetensors" in env.weight_files("controlnet")
    # Our loaders: files offered by what their keys hold.
    assert set(env.weight_files("stage_c")) == {"checkpoints/stable_cascade_stage_c.safetensors",
                                                "diffusion_models/cascade/stage_c.safetensors"}
    for name in env.weight_files("stage_c"):
        assert env.weight_path("stage_c", name).is_relative_to((tmp / "ComfyUI").resolve())
    module = env.load_model("stage_c", "diffusion_models/cascade/stage_c.safetensors", "fp32")
    expected = models["stage_c"].state_dict()
    assert all(torch.equal(module.state_dict()[k], v) for k, v in expected.items())
    # ComfyUI's CheckpointLoaderSimple validates and runs on the install's all-in-one file.
    assert CheckpointLoaderSimple.check(env, {"ckpt_name": "stable_cascade_stage_c.safetensors"}) == {}
    ctx = RunContext("1", "p", env, threading.Event())
    model, clip, vae = CheckpointLoaderSimple().run(ctx, "stable_cascade_stage_c.safetensors")[:3]
    assert model and clip and vae
    assert tree_state(tmp / "ComfyUI") == before  # read-only: nothing written, nothing copied
    assert not any((tmp / "app" / "weights").rglob("*.safetensors"))


def write_yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extra_model_paths_yaml_base_path_and_multiline_paths(install, tmp_path):
    tmp, models, _ = install
    store = tmp_path / "store"
    save(store / "ckpts_a" / "c_only.safetensors", file_state("stage_c", models["stage_c"]))
    save(store / "ckpts_b" / "b_only.safetensors", file_state("stage_b", models["stage_b"]))
    save(store / "te" / "clip_g.safetensors", file_state("text_encoder", models["text_encoder"]))
    absolute = save(tmp_path / "elsewhere" / "vae" / "stage_a.safetensors", file_state("stage_a", models["stage_a"]))
    yaml_file = write_yaml(tmp_path / "cfg" / "extra_model_paths.yaml", f"""
#config for comfyui, as its example writes it
mine:
    base_path: ../store
    checkpoints: |
        ckpts_a
        ckpts_b/
    clip: te
    embeddings: models/embeddings
other:
    vae: {absolute.parent}
comfyui:
    base_path: {tmp / "ComfyUI"}
    is_default: true
    unet: models/unet
empty:
""")
    env = env_for(tmp_path, extra_model_paths=(yaml_file,))
    assert env.comfy_files("checkpoints") == ["b_only.safetensors", "c_only.safetensors"]
    assert env.comfy_files("text_encoders") == ["clip_g.safetensors"]
    assert env.comfy_files("vae") == ["stage_a.safetensors"]
    assert env.comfy_files("diffusion_models") == ["cascade/stage_c.safetensors"]
    assert env.comfy_path("clip", "clip_g.safetensors") == (store / "te" / "clip_g.safetensors").resolve()
    assert set(env.weight_files("stage_c")) == {"checkpoints/c_only.safetensors",
                                                "diffusion_models/cascade/stage_c.safetensors"}
    assert env.weight_files("stage_a") == ["vae/stage_a.safetensors"]
    assert env.weight_path("stage_b", "checkpoints/c_only.safetensors") is None  # holds no Stage B
    te = env.load_model("text_encoder", "text_encoders/clip_g.safetensors", "fp32")
    assert all(torch.equal(te.state_dict()[k], v) for k, v in models["text_encoder"].state_dict().items())
    assert any("ignored: embeddings" in p for p in env.model_roots.problems)


def test_path_tricks_in_the_yaml_are_refused_and_reported(install, tmp_path):
    tmp, models, _ = install
    save(tmp_path / "outside" / "stage_c.safetensors", file_state("stage_c", models["stage_c"]))
    (tmp_path / "base").mkdir()
    yaml_file = write_yaml(tmp_path / "cfg" / "x.yaml", """
trick:
    base_path: ../base
    checkpoints: |
        ../outside
        sub/../../outside
bad_section: [1, 2]
bad_value:
    checkpoints: 5
""")
    env = env_for(tmp_path, extra_model_paths=(yaml_file, tmp_path / "cfg" / "missing.yaml"))
    assert env.comfy_files("checkpoints") == [] and env.weight_files("stage_c") == []
    assert env.model_roots.folders == {}
    problems = "\n".join(env.model_roots.problems)
    assert problems.count("refused") == 2 and "missing.yaml: cannot read the file" in problems
    assert "[bad_section]: expected a mapping" in problems and "[bad_value] checkpoints: expected a path" in problems
    write_yaml(tmp_path / "cfg" / "broken.yaml", "a: [unclosed\n")
    env = env_for(tmp_path, extra_model_paths=(tmp_path / "cfg" / "broken.yaml",))
    assert "not valid YAML" in env.weights_report()


@pytest.mark.parametrize("name", ["../secret/stage_c.safetensors", "linked_out.safetensors",
                                  "/etc/passwd", "sub/../../secret/stage_c.safetensors"])
def test_names_leading_out_of_an_extra_folder_are_refused(install, name):
    tmp, _, _ = install
    env = env_for(tmp, comfy_models=(tmp / "ComfyUI" / "models",))
    assert env.comfy_path("checkpoints", name) is None
    assert env.weight_path("stage_c", f"checkpoints/{name}") is None
    assert "ckpt_name" in CheckpointLoaderSimple.check(env, {"ckpt_name": name})
    assert "file" in LoadStageC.check(env, {"file": f"checkpoints/{name}", "dtype": "auto"})


def test_missing_root_is_reported_at_start_up_not_a_crash(tmp_path):
    env = env_for(tmp_path, comfy_models=(tmp_path / "no_such_install",))
    assert env.comfy_files("checkpoints") == []
    assert f"--comfy-models {tmp_path / 'no_such_install'}: does not exist" in env.weights_report()


def test_command_line_flags(tmp_path):
    argv = ["--comfy-models", str(tmp_path / "a"), "--comfy-models", "~/b", "--extra-model-paths", "x.yaml"]
    config = Config.from_cli(argv, environ={"HF_HOME": str(tmp_path / "hf")})
    assert config.comfy_models == ((tmp_path / "a").resolve(), Path(os.path.expanduser("~/b")).resolve())
    assert config.extra_model_paths == (Path("x.yaml").resolve(),)
    assert config.hf_cache_dir == tmp_path / "hf" / "hub"
    assert Config.from_cli([], environ={"HF_HUB_CACHE": "/c"}).hf_cache_dir == Path("/c")
    assert Config.from_cli(["--no-hf-cache"], environ={"HF_HUB_CACHE": "/c"}).hf_cache_dir is None
    assert Config.from_cli([], environ={"XDG_CACHE_HOME": "/x"}).hf_cache_dir == Path("/x/huggingface/hub")


def test_a_comfy_install_holding_every_kind_silences_the_missing_files_warning(install):
    """The start-up report counts what the read-only roots hold: the install's all-in-one files and vae/stage_a
    cover every official kind, so nothing is reported missing (the empty weights folder alone would be)."""
    tmp, _, _ = install
    alone = env_for(tmp / "alone")
    assert "Missing official files" in alone.weights_report()
    env = env_for(tmp / "with", comfy_models=(tmp / "ComfyUI",))
    assert env.held_elsewhere() >= {"stage_c", "stage_b", "stage_a", "text_encoder", "effnet", "previewer"}
    report = env.weights_report()
    missing = report.split("Missing official files", 1)[1] if "Missing official files" in report else ""
    for name in ("stage_c_bf16", "stage_b_bf16", "stage_a.safetensors", "effnet_encoder", "previewer.safetensors"):
        assert name not in missing, name
