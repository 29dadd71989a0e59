"""ComfyUI's loader classes: each output's network equals the tensors written (ComfyUI's all-in-one layout,
q/k/v split, CLIP-G) and our own split files; wrong files give named errors; parts a file lacks fail
clearly on use; residency is shared with our loaders; /object_info entries are ComfyUI's."""
from __future__ import annotations

import os
import threading

import pytest
import torch

from engine.catalogue import node_info
from engine.schema import RunContext
from nodes.comfy import types as CT
from nodes.comfy.files import MissingPart, MissingPartError
from nodes.comfy.loaders import NODES, CheckpointLoaderSimple, CLIPLoader, UNETLoader, VAELoader
from runtime.env import Env
from tests.comfy_folders_helpers import tiny_models, write_comfy_layout
from tests.loading_helpers import file_state, save
from runtime.env import native_bf16
from tests.nodes_helpers import demo_env, tmp_config

# Stage A's auto is bf16 where this CPU does bf16 natively (runtime/env.py native_bf16; tests/test_gpu_path.py).
AUTO = {"stage_c": torch.bfloat16, "stage_b": torch.bfloat16, "text_encoder": torch.bfloat16,
        "stage_a": torch.bfloat16 if native_bf16("cpu") else torch.float32, "effnet": torch.float32,
        "previewer": torch.float32}


def ctx_for(env):
    warnings: list[str] = []
    return RunContext("1", "p", env, threading.Event(), on_warning=warnings.append), warnings


def same_tensors(env, module, expected: dict[str, torch.Tensor]) -> None:
    """Bitwise equality of a loaded module with a state dict (same keys, dtypes, bytes).

    ComfyUI loaders' parts are read at first use (runtime/residency.py `lazy`): this is that use."""
    env.models.ensure(module)
    got = module.state_dict()
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


def written(model, kind) -> dict[str, torch.Tensor]:
    """What loading `model`'s tensors at the official dtype must give: a plain torch cast, nothing else."""
    return {k: v.to(AUTO[kind]) if v.is_floating_point() else v for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A ComfyUI-layout weights folder written from tiny random models, plus the mistakes users make."""
    tmp = tmp_path_factory.mktemp("comfy")
    models = tiny_models()
    files = write_comfy_layout(tmp / "weights", models)
    w = tmp / "weights"
    files["bare_c"] = save(w / "checkpoints" / "stage_c_bf16.safetensors", file_state("stage_c", models["stage_c"]))
    files["te_ckpt"] = save(w / "checkpoints" / "text_only.safetensors",
                            file_state("text_encoder", models["text_encoder"]))
    files["sdxl"] = save(w / "checkpoints" / "sdxl.safetensors",
                         {"model.diffusion_model.input_blocks.0.0.weight": torch.randn(4, 4, 3, 3)})
    files["te_unet"] = save(w / "unet" / "te.safetensors", file_state("text_encoder", models["text_encoder"]))
    files["a_te"] = save(w / "text_encoders" / "stage_a.safetensors", file_state("stage_a", models["stage_a"]))
    files["c_vae"] = save(w / "vae" / "stage_c.safetensors", file_state("stage_c", models["stage_c"]))
    files["prev_vae"] = save(w / "vae" / "previewer.safetensors", file_state("previewer", models["previewer"]))
    return Env(tmp_config(tmp, demo=False)), models, files


def test_stage_c_all_in_one_gives_each_part_as_written(built):
    env, models, _ = built
    ctx, warnings = ctx_for(env)
    model, clip, vae = CheckpointLoaderSimple().run(ctx, "stable_cascade_stage_c.safetensors")
    assert (model.stage, model.shift) == ("stage_c", 2.0) and warnings == []
    same_tensors(env, model.handle.module, written(models["stage_c"], "stage_c"))  # q/k/v re-joined, bf16
    same_tensors(env, clip.handle.module, written(models["text_encoder"], "text_encoder"))  # CLIP-G layout
    assert vae.kind == "stage_c_coder" and vae.stage_a is None
    same_tensors(env, vae.effnet.module, written(models["effnet"], "effnet"))
    same_tensors(env, vae.previewer.module, written(models["previewer"], "previewer"))


def test_stage_b_all_in_one_gives_stage_b_stage_a_and_clip(built):
    env, models, _ = built
    model, clip, vae = CheckpointLoaderSimple().run(ctx_for(env)[0], "stable_cascade_stage_b.safetensors")
    assert (model.stage, model.shift) == ("stage_b", 1.0)
    same_tensors(env, model.handle.module, written(models["stage_b"], "stage_b"))
    same_tensors(env, clip.handle.module, written(models["text_encoder"], "text_encoder"))
    assert vae.kind == "stage_a" and vae.effnet is None and vae.previewer is None
    same_tensors(env, vae.stage_a.module, written(models["stage_a"], "stage_a"))


def test_bare_stage_c_in_checkpoints_loads_the_model_and_names_the_missing_parts(built):
    """ComfyUI issue #2882: stage_c_bf16.safetensors in checkpoints/. MODEL works; CLIP and VAE are empty
    (falsy, as ComfyUI's None) and their first use is a node error saying what the file holds."""
    env, models, _ = built
    ctx, warnings = ctx_for(env)
    model, clip, vae = CheckpointLoaderSimple().run(ctx, "stage_c_bf16.safetensors")
    same_tensors(env, model.handle.module, written(models["stage_c"], "stage_c"))
    assert isinstance(clip, CT.Clip) and isinstance(clip.handle, MissingPart) and not clip.handle
    assert isinstance(vae.effnet, MissingPart) and not vae.previewer
    with pytest.raises(MissingPartError) as err:
        clip.handle.module  # what any CLIP user (runtime.model_use.using) touches first
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert "stage_c_bf16.safetensors" in msg and "Stage C" in msg and "no a CLIP" not in msg
    assert "CLIP-G text encoder" in msg and "CLIPLoader" in msg and "stable_cascade" in msg
    with pytest.raises(MissingPartError, match="VAELoader"):
        vae.effnet.module
    assert len(warnings) == 2 and any("CLIP output is empty" in w for w in warnings)
    assert getattr(clip.handle, "patches", "absent") == "absent"  # hasattr/getattr(default) stay quiet


@pytest.mark.parametrize("name, words", [
    ("sdxl.safetensors", ["Stable Diffusion / SDXL", "expected a Stable Cascade checkpoint"]),
    ("text_only.safetensors", ["CLIP-G text encoder", "expected a Stable Cascade checkpoint"]),
    ("nothing.safetensors", ["'nothing.safetensors' is not in the checkpoints folder",
                             "stable_cascade_stage_c.safetensors", "stage_c_bf16.safetensors"]),
])
def test_wrong_checkpoints_are_refused_naming_what_they_hold(built, name, words):
    env = built[0]
    message = CheckpointLoaderSimple.check(env, {"ckpt_name": name})["ckpt_name"]
    for word in words:
        assert word in message
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        CheckpointLoaderSimple().run(ctx_for(env)[0], name)
    for word in words:  # the run-time error says the same as validation
        assert word in str(err.value)
    assert CheckpointLoaderSimple.weights_used(env, {"ckpt_name": name}) in (None, [])


def test_junk_file_is_listed_nowhere(built):
    env = built[0]
    assert "junk.safetensors" not in env.comfy_files("checkpoints")
    assert "not in the checkpoints folder" in CheckpointLoaderSimple.check(env, {"ckpt_name": "junk.safetensors"})[
        "ckpt_name"]


def test_unet_loader_reads_bare_files_from_unet_and_diffusion_models(built):
    env, models, _ = built
    assert {"cascade/stage_c.safetensors", "stage_b.safetensors"} <= set(UNETLoader.INPUTS[0].choice_list(env))
    ctx, warnings = ctx_for(env)
    (c,) = UNETLoader().run(ctx, "cascade/stage_c.safetensors", "default")
    (b,) = UNETLoader().run(ctx, "stage_b.safetensors", "fp8_e4m3fn")
    assert (c.stage, c.shift, b.stage, b.shift) == ("stage_c", 2.0, "stage_b", 1.0)
    same_tensors(env, c.handle.module, written(models["stage_c"], "stage_c"))
    same_tensors(env, b.handle.module, written(models["stage_b"], "stage_b"))  # fp8: default dtype, warned
    assert len(warnings) == 1 and "fp8_e4m3fn" in warnings[0] and "bfloat16" in warnings[0]
    problem = UNETLoader.check(env, {"unet_name": "te.safetensors"})["unet_name"]
    assert "CLIP-G text encoder" in problem and "Stage C or Stage B" in problem
    with pytest.raises(ValueError, match="CLIP-G text encoder"):
        UNETLoader().run(ctx, "te.safetensors", "default")


def test_clip_loader_takes_clip_g_only_as_stable_cascade(built):
    env, models, _ = built
    ctx, _ = ctx_for(env)
    assert {"clip_g.safetensors", "model.safetensors"} <= set(CLIPLoader.INPUTS[0].choice_list(env))
    for name in ("clip_g.safetensors", "model.safetensors"):  # text_encoders/ and legacy clip/
        (clip,) = CLIPLoader().run(ctx, name, "stable_cascade")
        same_tensors(env, clip.handle.module, written(models["text_encoder"], "text_encoder"))
    assert CLIPLoader.check(env, {"clip_name": "clip_g.safetensors", "type": "stable_cascade"}) == {}
    assert "choose type stable_cascade" in CLIPLoader.check(env, {"clip_name": "clip_g.safetensors",
                                                                  "type": "sd3"})["type"]
    with pytest.raises(ValueError, match="type 'stable_diffusion'"):
        CLIPLoader().run(ctx, "clip_g.safetensors", "stable_diffusion")
    assert "Stage A" in CLIPLoader.check(env, {"clip_name": "stage_a.safetensors", "type": "stable_cascade"})[
        "clip_name"]


def test_vae_loader_gives_stage_a_or_the_stage_c_coder_part_it_holds(built):
    env, models, _ = built
    ctx, _ = ctx_for(env)
    (a,) = VAELoader().run(ctx, "stage_a.safetensors")
    assert a.kind == "stage_a" and a.effnet is None
    same_tensors(env, a.stage_a.module, written(models["stage_a"], "stage_a"))
    (e,) = VAELoader().run(ctx, "effnet_encoder.safetensors")
    assert e.kind == "stage_c_coder" and e.previewer is None and e.stage_a is None
    same_tensors(env, e.effnet.module, written(models["effnet"], "effnet"))
    (p,) = VAELoader().run(ctx, "previewer.safetensors")
    assert p.kind == "stage_c_coder" and p.effnet is None
    same_tensors(env, p.previewer.module, written(models["previewer"], "previewer"))
    assert "Stage C" in VAELoader.check(env, {"vae_name": "stage_c.safetensors"})["vae_name"]


def test_fingerprint_and_weights_used(built):
    env, _, files = built
    inputs = {"ckpt_name": "stable_cascade_stage_c.safetensors"}
    used = CheckpointLoaderSimple.weights_used(env, inputs)
    assert used == [(files["aio_c"].resolve(), torch.bfloat16), (files["aio_c"].resolve(), torch.bfloat16),
                    (files["aio_c"].resolve(), torch.float32), (files["aio_c"].resolve(), torch.float32)]
    assert VAELoader.weights_used(env, {"vae_name": "stage_a.safetensors"}) == [(files["vae_a"].resolve(),
                                                                                 AUTO["stage_a"])]
    before = CheckpointLoaderSimple.fingerprint(env, inputs)
    os.utime(files["aio_c"], ns=(1, 1))
    assert CheckpointLoaderSimple.fingerprint(env, inputs) != before
    assert CheckpointLoaderSimple.fingerprint(env, {"ckpt_name": "nothing.safetensors"}) is None


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_env(tmp_config(tmp_path_factory.mktemp("demo")))


def test_demo_all_in_one_equals_our_split_demo_files_and_shares_residency(demo):
    from nodes.registry import NODES as ALL

    ctx, _ = ctx_for(demo)
    model, clip, vae = CheckpointLoaderSimple().run(ctx, "stable_cascade_stage_c.safetensors")
    ours = {"stage_c": ALL["LoadStageC"], "text_encoder": ALL["LoadTextEncoder"], "effnet": ALL["LoadEffNet"],
            "previewer": ALL["LoadPreviewer"]}
    demo_names = {"stage_c": "demo_stage_c.safetensors", "text_encoder": "demo_text_encoder.safetensors",
                  "effnet": "demo_effnet_encoder.safetensors", "previewer": "demo_previewer.safetensors"}
    got = {"stage_c": model.handle, "text_encoder": clip.handle, "effnet": vae.effnet, "previewer": vae.previewer}
    for kind, node in ours.items():
        (split,) = node().run(ctx, demo_names[kind], "auto")
        assert split.module is not got[kind].module
        same_tensors(demo, got[kind].module, split.module.state_dict())
    loads = demo.models.loads
    (shared,) = ALL["LoadStageC"]().run(ctx, "checkpoints/stable_cascade_stage_c.safetensors", "auto")
    assert shared.module is model.handle.module and demo.models.loads == loads  # one resident module
    (again, _, _) = CheckpointLoaderSimple().run(ctx, "stable_cascade_stage_c.safetensors")
    assert again.handle.module is model.handle.module and demo.models.loads == loads


def test_object_info_entries_are_comfyuis(demo):
    info = {name: node_info(name, cls, demo) for name, cls in NODES.items()}
    ck = info["CheckpointLoaderSimple"]
    assert list(ck["input"]["required"]) == ["ckpt_name"] and ck["category"] == "loaders"
    assert {"stable_cascade_stage_c.safetensors", "stable_cascade_stage_b.safetensors"} <= set(
        ck["input"]["required"]["ckpt_name"][0])
    assert ck["output"] == ["MODEL", "CLIP", "VAE"] and ck["output_name"] == ["MODEL", "CLIP", "VAE"]
    un = info["UNETLoader"]
    assert un["input_order"] == {"required": ["unet_name", "weight_dtype"]} and un["category"] == "advanced/loaders"
    assert un["input"]["required"]["weight_dtype"][0] == ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]
    assert un["output"] == ["MODEL"] and un["output_name"] == ["MODEL"]
    cl = info["CLIPLoader"]
    assert cl["input_order"] == {"required": ["clip_name", "type"], "optional": ["device"]}
    assert cl["input"]["required"]["type"][0][:4] == ["stable_diffusion", "stable_cascade", "sd3", "stable_audio"]
    assert cl["input"]["optional"]["device"][0] == ["default", "cpu"] and cl["category"] == "advanced/loaders"
    assert "model.safetensors" in cl["input"]["required"]["clip_name"][0] and cl["output"] == ["CLIP"]
    va = info["VAELoader"]
    assert va["input_order"] == {"required": ["vae_name"]} and va["output"] == ["VAE"] and va["category"] == "loaders"
    assert "stage_a.safetensors" in va["input"]["required"]["vae_name"][0]
    for entry in (ck, un, cl, va):  # ComfyUI's file combos carry no default
        assert all("default" not in spec[1] for spec in entry["input"]["required"].values())


def test_a_part_nothing_uses_is_never_read(tmp_path):
    """ComfyUI's Stage B example never uses the Stage B checkpoint's CLIP: here it is never read (ComfyUI
    reads it, ~1.4 GB in bf16 with the real file). Each part is read at its first use."""
    write_comfy_layout(tmp_path / "weights", tiny_models())
    env = Env(tmp_config(tmp_path, demo=False))
    model, clip, vae = CheckpointLoaderSimple().run(ctx_for(env)[0], "stable_cascade_stage_b.safetensors")
    assert env.models.loads == 0 and env.models.resident_bytes() == 0
    assert all(p.is_meta for p in clip.handle.module.parameters())
    env.models.ensure(model.handle.module)
    env.models.ensure(vae.stage_a.module)
    assert env.models.loads == 2
    assert all(p.is_meta for p in clip.handle.module.parameters())  # still unread
    assert not any(p.is_meta for p in model.handle.module.parameters())
