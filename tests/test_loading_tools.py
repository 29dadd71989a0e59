"""`python -m models.inspect` output and the demo weights (real formats, deterministic, load round trip)."""
from __future__ import annotations

import pytest
import torch

from models import demo, inspect
from models.loading import detect, load
from tests.loading_helpers import clip_g_state, file_state, prefixed, save, tiny_model

DEMO_KINDS = {"stage_c": "stage_c/demo_stage_c.safetensors", "stage_b": "stage_b/demo_stage_b.safetensors",
              "stage_a": "stage_a/demo_stage_a.safetensors", "effnet": "effnet/demo_effnet_encoder.safetensors",
              "previewer": "previewer/demo_previewer.safetensors",
              "text_encoder": "text_encoder/demo_text_encoder.safetensors"}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    demo.write_demo_weights(root)
    return root


def test_inspect_original_file(tmp_path, capsys):
    path = save(tmp_path / "stage_b_lite_bf16.safetensors", file_state("stage_b", tiny_model("stage_b")),
                torch.bfloat16)
    assert inspect.main([str(path)]) == 0
    out = capsys.readouterr().out
    params = detect(path).components[0].params
    for line in ("format: original (single file", "- Stage B  [kind stage_b]", "size preset: tiny",
                 "dtype: bfloat16", "layout: original", f"parameters: {params:,}"):
        assert line in out
    assert "problem" not in out


def test_inspect_all_in_one_lists_every_component(tmp_path, capsys):
    state = {**prefixed("model.diffusion_model.", file_state("stage_c", tiny_model("stage_c"))),
             **prefixed("text_encoder.", clip_g_state(file_state("text_encoder", tiny_model("text_encoder")),
                                                      openclip_projection=True)),
             **prefixed("clip_l_vision.", {"vision_model.x": torch.ones(2)})}
    path = save(tmp_path / "aio.safetensors", state)
    assert inspect.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "format: all-in-one" in out and "- Stage C" in out and "- CLIP text encoder" in out
    assert "layout: clip-g" in out and "1 tensors belong to no supported network (prefixes clip_l_vision.)" in out


def test_inspect_problems_and_exit_status(tmp_path, capsys):
    other = save(tmp_path / "other.safetensors", {"foo": torch.ones(1)})
    state = file_state("stage_a", tiny_model("stage_a"))
    del state["out_block.0.bias"]
    broken = save(tmp_path / "broken_a.safetensors", state)
    assert inspect.main([str(other)]) == 1
    assert "no Stable Cascade network found" in capsys.readouterr().out
    assert inspect.main([str(broken)]) == 1
    out = capsys.readouterr().out
    assert "size preset: unknown" in out and "missing keys: out_block.0.bias" in out
    assert inspect.main([str(tmp_path / "absent.safetensors")]) == 1
    assert "error: " in capsys.readouterr().out
    assert inspect.main([]) == 2


def test_demo_weights_load_as_tiny_networks(demo_dir):
    for kind, rel in DEMO_KINDS.items():
        path = demo_dir / rel
        (comp,) = detect(path).components
        assert (comp.kind, comp.preset) == (kind, "tiny") and not comp.problems
        model = load(path, kind)
        floats = [p for p in model.parameters() if p.is_floating_point()]
        assert all(p.abs().sum() > 0 for p in floats), kind  # non-zero everywhere, so outputs are not trivial
    assert detect(demo_dir / DEMO_KINDS["stage_c"]).components[0].dtype == "bfloat16"
    hidden, pooled = load(demo_dir / DEMO_KINDS["text_encoder"], "text_encoder").encode(["a cat"])
    eps = load(demo_dir / DEMO_KINDS["stage_c"], "stage_c", dtype=torch.float32)(
        torch.randn(1, 16, 4, 4), torch.tensor([0.5]), hidden, pooled, torch.zeros(1, 1, 768))
    assert torch.isfinite(eps).all() and eps.std() > 0.01


def test_demo_weights_are_deterministic_and_never_overwrite(tmp_path, demo_dir):
    other = tmp_path / "again"
    paths = demo.write_demo_weights(other)
    assert [p.relative_to(other).as_posix() for p in paths] == [*DEMO_KINDS.values(),
                                                                "loras/demo_stage_c_lora.safetensors"]
    for p in paths:
        assert p.read_bytes() == (demo_dir / p.relative_to(other)).read_bytes()
    target = other / DEMO_KINDS["stage_a"]
    target.write_bytes(b"user's own file")
    assert demo.main([str(other)]) == 0
    assert target.read_bytes() == b"user's own file"


def test_demo_lora_applies_to_demo_stage_c(demo_dir):
    from models.lora import apply_lora
    from models.patching import ModelHandle, applied
    stage_c = load(demo_dir / DEMO_KINDS["stage_c"], "stage_c", dtype=torch.float32)
    handle, _, report = apply_lora(demo_dir / "loras/demo_stage_c_lora.safetensors", unet=ModelHandle(stage_c),
                                   unet_kind="stage_c")
    assert not report.unmatched and report.matched_tensors > 0
    args = (torch.randn(1, 16, 4, 4), torch.tensor([0.5]), torch.randn(1, 77, 32), torch.randn(1, 1, 32),
            torch.zeros(1, 1, 768))
    plain = stage_c(*args)
    with applied(handle) as patched:
        assert not torch.allclose(patched(*args), plain)


def test_inspect_weights_folder_of_original_files(demo_dir, capsys):
    assert inspect.main([str(demo_dir)]) == 0
    out = capsys.readouterr().out
    assert "format: original (folder" in out
    assert out.count("size preset: tiny") == 6
    assert "loras/demo_stage_c_lora.safetensors: this is a LoRA" in out
