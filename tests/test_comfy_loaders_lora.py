"""LoraLoader, LoraLoaderModelOnly and ModelSamplingStableCascade: strength semantics against an independent
computation (W + s · up @ down · alpha / rank on known keys), strength 0 = the input as is, the shift."""
from __future__ import annotations

import threading

import pytest
import torch

from engine.catalogue import node_info
from engine.schema import RunContext
from models.patching import applied
from nodes.comfy import types as CT
from nodes.comfy.model_patches import LoraLoader, LoraLoaderModelOnly, ModelSamplingStableCascade
from runtime.env import Env
from tests.comfy_folders_helpers import tiny_models, write_comfy_layout
from tests.loading_helpers import save
from tests.nodes_helpers import tmp_config

RANK, ALPHA = 2, 3.0
TE_KEY = "clip.text_model.encoder.layers.0.mlp.fc1.weight"


def factors(out: int, cols: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(out, RANK, generator=g), torch.randn(RANK, cols, generator=g)


def kohya(prefix: str, key: str, up: torch.Tensor, down: torch.Tensor) -> dict[str, torch.Tensor]:
    name = prefix + key[: -len(".weight")].replace(".", "_")
    return {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down, f"{name}.alpha": torch.tensor(ALPHA)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lora")
    models = tiny_models()
    write_comfy_layout(tmp / "weights", models)
    c_key = next(k for k in models["stage_c"].state_dict() if k.endswith("attention.attn.out_proj.weight"))
    b_key = next(k for k in models["stage_b"].state_dict() if k.endswith("attention.attn.out_proj.weight"))
    te_rows, te_cols = models["text_encoder"].state_dict()[TE_KEY].shape
    c_dim, b_dim = models["stage_c"].state_dict()[c_key].shape[0], models["stage_b"].state_dict()[b_key].shape[0]
    f = {"c": factors(c_dim, c_dim, 1), "te": factors(te_rows, te_cols, 2), "b": factors(b_dim, b_dim, 3)}
    loras = tmp / "weights" / "loras"
    save(loras / "known.safetensors", {**kohya("lora_prior_unet_", c_key, *f["c"]),
                                       **kohya("lora_prior_te_", TE_KEY[len("clip."):], *f["te"])})
    save(loras / "decoder.safetensors", kohya("lora_decoder_unet_", b_key, *f["b"]))
    env = Env(tmp_config(tmp, demo=False))
    ctx = RunContext("1", "p", env, threading.Event(), on_warning=lambda m: None)
    from nodes.comfy.loaders import CheckpointLoaderSimple

    c_model, clip, _ = CheckpointLoaderSimple().run(ctx, "stable_cascade_stage_c.safetensors")
    b_model, _, _ = CheckpointLoaderSimple().run(ctx, "stable_cascade_stage_b.safetensors")
    for handle in (c_model.handle, clip.handle, b_model.handle):  # parts are read at first use: read them now
        env.models.ensure(handle.module)
    return dict(env=env, ctx=ctx, c=c_model, clip=clip, b=b_model, keys={"c": c_key, "b": b_key, "te": TE_KEY},
                f=f)


def expected(weight: torch.Tensor, up: torch.Tensor, down: torch.Tensor, strength: float) -> torch.Tensor:
    """ComfyUI's LoRA merge, in float64: W + strength · (up @ down) · alpha / rank."""
    return weight.double() + strength * (up.double() @ down.double()) * (ALPHA / RANK)


def merged(handle, key: str) -> torch.Tensor:
    with applied(handle) as module:
        return module.state_dict()[key].clone()


def assert_bf16_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal to the float64 reference up to bf16 rounding of the stored weight (2^-8 relative, 1 ulp)."""
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.double(), want, rtol=2 ** -7, atol=1e-3)


@pytest.mark.parametrize("s_model, s_clip", [(1.0, 1.0), (0.5, -1.5), (-2.0, 3.0), (100.0, -100.0)])  # + declared ends
def test_lora_loader_strengths_match_the_formula(setup, s_model, s_clip):
    c, clip, keys, f = setup["c"], setup["clip"], setup["keys"], setup["f"]
    base_c = c.handle.module.state_dict()[keys["c"]].clone()
    base_te = clip.handle.module.state_dict()[keys["te"]].clone()
    model2, clip2 = LoraLoader().run(setup["ctx"], c, clip, "known.safetensors", s_model, s_clip)
    assert model2.stage == "stage_c" and model2.shift == c.shift and model2.handle.module is c.handle.module
    assert_bf16_close(merged(model2.handle, keys["c"]), expected(base_c, *f["c"], s_model))
    assert_bf16_close(merged(clip2.handle, keys["te"]), expected(base_te, *f["te"], s_clip))
    # the inputs are untouched, and so is the module once the block ends
    assert c.handle.patches == () and clip.handle.patches == ()
    assert torch.equal(c.handle.module.state_dict()[keys["c"]], base_c)


def test_strength_zero_returns_the_input_as_is(setup):
    c, clip = setup["c"], setup["clip"]
    model2, clip2 = LoraLoader().run(setup["ctx"], c, clip, "known.safetensors", 0.0, 0.0)
    assert model2 is c and clip2 is clip
    model3, clip3 = LoraLoader().run(setup["ctx"], c, clip, "known.safetensors", 0.0, 1.0)
    assert model3 is c and clip3 is not clip and len(clip3.handle.patches) == 1
    model4, clip4 = LoraLoader().run(setup["ctx"], c, clip, "known.safetensors", 1.0, 0.0)
    assert clip4 is clip and len(model4.handle.patches) == 1
    (only,) = LoraLoaderModelOnly().run(setup["ctx"], c, "known.safetensors", 0.0)
    assert only is c


def test_model_only_and_stage_b_target(setup):
    b, keys, f = setup["b"], setup["keys"], setup["f"]
    base_b = b.handle.module.state_dict()[keys["b"]].clone()
    (b2,) = LoraLoaderModelOnly().run(setup["ctx"], b, "decoder.safetensors", 0.75)
    assert b2.stage == "stage_b"  # MODEL's stage chose the Stage B (decoder) mapping
    assert_bf16_close(merged(b2.handle, keys["b"]), expected(base_b, *f["b"], 0.75))
    (c2,) = LoraLoaderModelOnly().run(setup["ctx"], setup["c"], "known.safetensors", 1.0)
    assert_bf16_close(merged(c2.handle, keys["c"]),
                      expected(setup["c"].handle.module.state_dict()[keys["c"]], *f["c"], 1.0))


def test_lora_on_a_checkpoint_without_clip_patches_the_model_and_passes_the_empty_clip(setup):
    ctx = setup["ctx"]
    from nodes.comfy.loaders import CheckpointLoaderSimple

    bare, empty, _ = CheckpointLoaderSimple().run(ctx, "stage_b_bare.safetensors")
    model2, clip2 = LoraLoader().run(ctx, bare, empty, "decoder.safetensors", 1.0, 1.0)
    assert clip2 is empty and len(model2.handle.patches) == 1


def test_lora_errors_are_named(setup):
    env, ctx = setup["env"], setup["ctx"]
    message = LoraLoader.check(env, {"lora_name": "gone.safetensors"})["lora_name"]
    assert "not in the loras folder" in message and "known.safetensors" in message
    with pytest.raises(TypeError, match="MODEL"):
        LoraLoader().run(ctx, "not a model", setup["clip"], "known.safetensors", 1.0, 1.0)
    with pytest.raises(FileNotFoundError, match="gone.safetensors"):
        LoraLoaderModelOnly().run(ctx, setup["c"], "gone.safetensors", 1.0)


def test_model_sampling_stable_cascade_changes_only_the_shift(setup):
    c = setup["c"]
    (out,) = ModelSamplingStableCascade().run(setup["ctx"], c, 3.25)
    assert out == CT.Model(c.handle, "stage_c", 3.25) and c.shift == 2.0
    (b,) = ModelSamplingStableCascade().run(setup["ctx"], setup["b"], 0.0)  # the declared minimum
    assert (b.stage, b.shift, b.handle) == ("stage_b", 0.0, setup["b"].handle)
    with pytest.raises(TypeError, match="MODEL"):
        ModelSamplingStableCascade().run(setup["ctx"], {"samples": 1}, 2.0)


def test_object_info_entries_are_comfyuis(setup):
    env = setup["env"]
    lo = node_info("LoraLoader", LoraLoader, env)
    assert lo["input_order"] == {"required": ["model", "clip", "lora_name", "strength_model", "strength_clip"]}
    req = lo["input"]["required"]
    assert req["model"] == ["MODEL"] and req["clip"] == ["CLIP"] and "known.safetensors" in req["lora_name"][0]
    for name in ("strength_model", "strength_clip"):
        assert req[name][0] == "FLOAT" and {k: req[name][1][k] for k in ("default", "min", "max", "step")} == {
            "default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
    assert lo["output"] == ["MODEL", "CLIP"] and lo["output_name"] == ["MODEL", "CLIP"] and lo["category"] == "loaders"
    mo = node_info("LoraLoaderModelOnly", LoraLoaderModelOnly, env)
    assert mo["input_order"] == {"required": ["model", "lora_name", "strength_model"]} and mo["output"] == ["MODEL"]
    ms = node_info("ModelSamplingStableCascade", ModelSamplingStableCascade, env)
    assert ms["input_order"] == {"required": ["model", "shift"]} and ms["category"] == "advanced/model"
    shift = ms["input"]["required"]["shift"]
    assert shift[0] == "FLOAT" and {k: shift[1][k] for k in ("default", "min", "max", "step")} == {
        "default": 2.0, "min": 0.0, "max": 100.0, "step": 0.01}
    assert ms["output"] == ["MODEL"] and ms["output_name"] == ["MODEL"]
