"""Headless runs through cli.py: default workflow in demo mode, --set overrides, re-running a PNG."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import cli
from tests.nodes_helpers import write_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_weights")
    write_weights(path)
    return path


def run(weights: Path, out: Path, *extra: str) -> int:
    return cli.main(["--weights", str(weights), "--output", str(out), "--input", str(out / "in"),
                     "--temp", str(out / "tmp"), "--demo", *extra])


def saved(out: Path) -> list[Path]:
    """PNGs the run saved (the input folder holds --demo's example image)."""
    return [p for p in out.rglob("*.png") if (out / "in") not in p.parents]


def test_cli_runs_default_workflow_and_writes_png(weights, tmp_path, capsys):
    code = run(weights, tmp_path, "--set", "StageCSampler.steps=2", "--set", "StageBSampler.steps=1",
               "--set", "Positive prompt.text=a red cube", "--set", "11.filename_prefix=cli/run")
    assert code == 0
    (png,) = (tmp_path / "cli").glob("run_*_.png")
    assert str(png) in capsys.readouterr().out
    with Image.open(png) as img:
        assert img.size == (256, 256)  # demo mode shrinks the default workflow
        doc = json.loads(img.text["workflow"])
    c = next(n for n in doc["nodes"].values() if n["class_type"] == "StageCSampler")
    assert c["inputs"]["steps"] == 2
    texts = [n["inputs"]["text"] for n in doc["nodes"].values() if n["class_type"] == "TextEncode"]
    assert "a red cube" in texts
    # A saved PNG is itself a runnable workflow.
    assert run(weights, tmp_path, str(png), "--set", "StageBSampler.seed=5") == 0
    assert len(list((tmp_path / "cli").glob("run_*_.png"))) == 2


def test_cli_reports_bad_set_and_invalid_workflow(weights, tmp_path, capsys):
    assert run(weights, tmp_path, "--set", "NoSuchNode.x=1") == 2
    assert "NoSuchNode" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": {"class_type": "LoadStageA", "inputs": {"file": "missing.safetensors"}},
                               "2": {"class_type": "LoadImage", "inputs": {"image": "nope.png"}},
                               "3": {"class_type": "StageAEncode", "inputs": {"stage_a": ["1", 0], "image": ["2", 0]}},
                               "4": {"class_type": "StageADecode", "inputs": {"stage_a": ["1", 0], "stage_b_latent": ["3", 0]}},
                               "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "x"}}}))
    assert run(weights, tmp_path, str(bad)) == 2
    err = capsys.readouterr().err
    assert "invalid workflow" in err and "missing.safetensors" in err and "node 1 (LoadStageA)" in err


def test_tight_memory_budget_swaps_stages_and_gives_the_same_image(weights, tmp_path):
    """A budget that holds one model at a time: Stage C is unloaded for Stage B, the image is unchanged."""
    import numpy as np

    from runtime.env import Env
    from nodes.registry import NODES
    from tests.nodes_helpers import small_default, tmp_config

    pixels, envs = [], []
    for budget in (None, 1e-9):
        config = tmp_config(tmp_path / str(budget), weights_dir=weights, memory_budget_gb=budget)
        env = Env(config)
        code, (png,) = cli.run_workflow(small_default(env, steps_c=2, steps_b=2), config, env, NODES)
        assert code == 0
        pixels.append(np.asarray(Image.open(png)))
        envs.append(env)
    roomy, tight = envs
    assert roomy.models.evictions == 0 and roomy.models.loads == 5
    assert tight.models.evictions > 0 and tight.models.resident_bytes() <= max(
        e.nbytes for e in tight.models._entries.values())  # at most one model left resident
    assert np.array_equal(pixels[0], pixels[1])


def test_default_workflow_is_fitted_to_the_weights_folder(weights, tmp_path):
    from engine.graph import validate_prompt
    from engine.workflow import document_to_prompt
    from runtime.env import Env
    from nodes.registry import NODES
    from runtime.workflows import default_workflow, load_default
    from tests.nodes_helpers import tmp_config

    shipped = load_default()
    demo = default_workflow(Env(tmp_config(tmp_path / "demo", weights_dir=weights)), NODES)
    files = {n["class_type"]: n["inputs"]["file"] for n in demo["nodes"].values() if "file" in n["inputs"]}
    assert files and all(Path(f).name.startswith("demo_") for f in files.values())
    assert validate_prompt(document_to_prompt(demo), NODES, Env(tmp_config(tmp_path / "v", weights_dir=weights))).ok
    assert shipped["nodes"].keys() == demo["nodes"].keys() and shipped["ui"] == demo["ui"]
    # Outside demo mode an official file that is present is kept; a missing one falls back to what exists.
    real = tmp_path / "real"
    for sub in ("stage_c", "stage_b"):
        (real / sub).mkdir(parents=True)
    from tests.loading_helpers import file_state, save, tiny_model  # real files: a loader lists what it can load
    save(real / "stage_c" / "stage_c_bf16.safetensors", file_state("stage_c", tiny_model("stage_c")))
    save(real / "stage_b" / "stage_b_lite_bf16.safetensors", file_state("stage_b", tiny_model("stage_b")))
    fitted = default_workflow(Env(tmp_config(tmp_path / "r", weights_dir=real, demo=False)), NODES)
    got = {n["class_type"]: n["inputs"]["file"] for n in fitted["nodes"].values() if "file" in n["inputs"]}
    assert got["LoadStageC"] == "stage_c_bf16.safetensors"
    assert got["LoadStageB"] == "stage_b_lite_bf16.safetensors"
    assert got["LoadStageA"] == "stage_a.safetensors"  # nothing there: the official name stays (and fails clearly)


def test_image_to_image_nodes(weights, tmp_path):
    """LoadImage → EffNetEncode → StageCSampler(init, denoise) → B → A, and Stage A encode/decode."""
    import torch

    from runtime.env import Env
    from nodes.registry import NODES
    from tests.nodes_helpers import tmp_config

    config = tmp_config(tmp_path, weights_dir=weights)
    env = Env(config)
    Image.radial_gradient("L").convert("RGB").resize((200, 136)).save(config.input_dir / "in.png")
    f = {k: env.weight_files(k)[0] for k in ("stage_c", "stage_b", "stage_a", "text_encoder", "effnet")}
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
        "2": {"class_type": "LoadEffNet", "inputs": {"file": f["effnet"], "dtype": "auto"}},
        "3": {"class_type": "EffNetEncode", "inputs": {"effnet": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "LoadTextEncoder", "inputs": {"file": f["text_encoder"], "dtype": "auto"}},
        "5": {"class_type": "TextEncode", "inputs": {"text_encoder": ["4", 0], "text": "a photo"}},
        "6": {"class_type": "LoadStageC", "inputs": {"file": f["stage_c"], "dtype": "auto"}},
        "7": {"class_type": "StageCSampler", "inputs": {
            "stage_c": ["6", 0], "positive": ["5", 0], "negative": ["5", 0], "width": 1024, "height": 1024,
            "batch_size": 2, "seed": 3, "steps": 4, "cfg": 2.0, "sampler": "ddpm", "scheduler": "simple",
            "shift": 2.0, "cfg_rho": 0.7, "denoise": 0.5, "init": ["3", 0]}},
        "8": {"class_type": "LoadStageB", "inputs": {"file": f["stage_b"], "dtype": "auto"}},
        "9": {"class_type": "StageBSampler", "inputs": {
            "stage_b": ["8", 0], "stage_c_latent": ["7", 0], "positive": ["5", 0], "negative": ["5", 0],
            "seed": 1, "steps": 2, "cfg": 1.1, "sampler": "euler_ancestral", "scheduler": "karras",
            "shift": 1.0, "cfg_rho": 0.0}},
        "10": {"class_type": "LoadStageA", "inputs": {"file": f["stage_a"], "dtype": "auto"}},
        "11": {"class_type": "StageADecode", "inputs": {"stage_a": ["10", 0], "stage_b_latent": ["9", 0]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "i2i"}},
        "13": {"class_type": "StageAEncode", "inputs": {"stage_a": ["10", 0], "image": ["1", 0]}},
        "14": {"class_type": "StageADecode", "inputs": {"stage_a": ["10", 0], "stage_b_latent": ["13", 0]}},
        "15": {"class_type": "PreviewImage", "inputs": {"images": ["14", 0]}},
    }
    code, images = cli.run_workflow(prompt, config, env, NODES)
    assert code == 0
    saved = sorted(p for p in images if p.name.startswith("i2i"))
    assert len(saved) == 2  # batch of 2 from one init image
    assert {Image.open(p).size for p in saved} == {(200, 136)}  # the init image's size wins over width/height
    (preview,) = [p for p in images if p.parent == config.temp_dir]
    assert Image.open(preview).size == (200, 136)
    # denoise 0 leaves the init latent untouched
    from engine.schema import RunContext
    import threading
    ctx = RunContext(node_id="7", prompt_id="p", env=env, cancel=threading.Event())
    img, _mask = NODES["LoadImage"]().run(ctx, "in.png")
    (effnet,) = NODES["LoadEffNet"]().run(ctx, f["effnet"], "auto")
    (latent,) = NODES["EffNetEncode"]().run(ctx, effnet, img)
    (te,) = NODES["LoadTextEncoder"]().run(ctx, f["text_encoder"], "auto")
    (cond,) = NODES["TextEncode"]().run(ctx, te, "")
    (c,) = NODES["LoadStageC"]().run(ctx, f["stage_c"], "auto")
    (out,) = NODES["StageCSampler"]().run(ctx, c, cond, cond, 1024, 1024, 1, 0, 3, 4.0, "ddpm", "simple", 2.0, 0.7,
                                          denoise=0.0, init=latent)
    assert torch.equal(out.samples, latent.samples) and (out.height, out.width) == (136, 200)


def test_cli_set_refuses_unknown_inputs_and_malformed_items(weights, tmp_path, capsys):
    """`--set 8.sed=1` (a typo of seed) is an error listing the node's inputs; nothing runs or is saved."""
    code = run(weights, tmp_path, "--set", "StageCSampler.steps=1", "--set", "StageCSampler.sed=1")
    err = capsys.readouterr().err
    assert code == 2
    assert "sed" in err and "seed" in err and "steps" in err and "cfg_rho" in err  # the inputs are listed
    assert not saved(tmp_path)
    for bad in ("StageCSampler.steps", "steps=1", ".steps=1", "StageCSampler.=1", "99.seed=1", "Nope.seed=1"):
        assert run(weights, tmp_path, "--set", bad) == 2, bad
        assert "--set" in capsys.readouterr().err
    assert not saved(tmp_path)


def test_cli_set_on_an_api_prompt_is_strict_too(weights, tmp_path, capsys):
    prompt = tmp_path / "p.json"
    prompt.write_text(json.dumps({"1": {"class_type": "LoadStageA", "inputs": {"file": "x", "dtype": "auto"}},
                                  "2": "not a node"}))
    assert run(weights, tmp_path, str(prompt), "--set", "1.dtpye=fp32") == 2
    err = capsys.readouterr().err
    assert "dtpye" in err and "file, dtype" in err
    assert run(weights, tmp_path, str(prompt), "--set", "2.x=1") == 2
    assert "not a node object" in capsys.readouterr().err
