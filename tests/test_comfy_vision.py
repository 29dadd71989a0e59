"""ComfyUI classes for image variation and ControlNets: /object_info entries, loaders on the demo files,
CLIPVisionEncode vs transformers, unCLIPConditioning and ControlNetApply(Advanced) entry semantics."""
from __future__ import annotations

import threading

import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from engine.catalogue import node_info
from engine.schema import RunContext
from models.clip_vision import CLIP_VISION_PRESETS, ClipVision, preprocess
from models.controlnet import ControlNet
from models.patching import ModelHandle
from nodes.comfy import COMFY_NODES, controlnet as cn_nodes, vision
from nodes.comfy.types import ClipVisionOutput, ControlNetApplied
from runtime.env import Env
from tests.nodes_helpers import tmp_config


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return Env(tmp_config(tmp_path_factory.mktemp("vision")))


def ctx(env) -> RunContext:
    return RunContext(node_id="1", prompt_id="p", env=env, cancel=threading.Event())


def test_object_info_entries(env):
    info = {n: node_info(n, COMFY_NODES[n], env) for n in ("unCLIPCheckpointLoader", "CLIPVisionLoader",
            "CLIPVisionEncode", "unCLIPConditioning", "ControlNetLoader", "ControlNetApply", "ControlNetApplyAdvanced")}
    assert info["unCLIPCheckpointLoader"]["output"] == ["MODEL", "CLIP", "VAE", "CLIP_VISION"]
    assert "stable_cascade_stage_c.safetensors" in info["unCLIPCheckpointLoader"]["input"]["required"]["ckpt_name"][0]
    assert info["CLIPVisionLoader"]["input"]["required"]["clip_name"][0] == ["demo_clip_vision_l14.safetensors"]
    enc = info["CLIPVisionEncode"]
    assert list(enc["input"]["required"]) == ["clip_vision", "image"] and enc["category"] == "conditioning"
    assert enc["input"]["optional"]["crop"] == [["center", "none"], {"default": "center"}]
    assert enc["output"] == ["CLIP_VISION_OUTPUT"]
    un = info["unCLIPConditioning"]["input"]["required"]
    assert un["strength"][1].items() >= {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}.items()
    assert un["noise_augmentation"][1].items() >= {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01}.items()
    assert info["ControlNetLoader"]["input"]["required"]["control_net_name"][0] == [
        "demo_canny.safetensors", "demo_inpainting.safetensors", "demo_super_resolution.safetensors"]
    adv = info["ControlNetApplyAdvanced"]
    assert adv["input_order"] == {"required": ["positive", "negative", "control_net", "image", "strength",
                                               "start_percent", "end_percent"], "optional": ["vae"]}
    assert adv["input"]["required"]["end_percent"][1].items() >= {"default": 1.0, "min": 0.0, "max": 1.0,
                                                                  "step": 0.001}.items()
    assert adv["output"] == ["CONDITIONING", "CONDITIONING"] and adv["output_name"] == ["positive", "negative"]
    assert adv["category"] == "conditioning/controlnet"
    assert info["ControlNetApply"]["input_order"]["required"] == ["conditioning", "control_net", "image", "strength"]


def test_clip_vision_encode_equals_transformers(env):
    (handle,) = vision.CLIPVisionLoader().run(ctx(env), clip_name="demo_clip_vision_l14.safetensors")
    cfg = CLIP_VISION_PRESETS["tiny"]
    ref = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size, projection_dim=768,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        hidden_act="quick_gelu", image_size=224, patch_size=14)).eval()
    ref.load_state_dict(load_file(str(env.comfy_path("clip_vision", "demo_clip_vision_l14.safetensors"))))
    image = torch.rand(2, 200, 260, 3, generator=torch.Generator().manual_seed(0))
    for crop in ("center", "none"):
        (out,) = vision.CLIPVisionEncode().run(ctx(env), clip_vision=handle, image=image, crop=crop)
        with torch.no_grad():
            # the loader's auto dtype for CLIP vision is bf16: the reference runs in bf16 too
            want = ref.to(torch.bfloat16)(pixel_values=preprocess(image, crop=crop).bfloat16()).image_embeds.float()
        assert isinstance(out, ClipVisionOutput) and out.image_embeds.shape == (2, 768)
        torch.testing.assert_close(out.image_embeds, want, rtol=1e-2, atol=1e-3)
    with pytest.raises(ValueError, match="no CLIP vision"):
        vision.CLIPVisionEncode().run(ctx(env), clip_vision=None, image=image)


def test_unclip_checkpoint_loader_gives_the_all_in_one_vision_part(env):
    model, clip, vae, part = vision.unCLIPCheckpointLoader().run(ctx(env), ckpt_name="stable_cascade_stage_c.safetensors")
    (alone,) = vision.CLIPVisionLoader().run(ctx(env), clip_name="demo_clip_vision_l14.safetensors")
    assert model.stage == "stage_c" and vae.kind == "stage_c_coder" and clip.handle
    assert isinstance(part.module, ClipVision) and part.module is not alone.module
    a, b = (env.models.ensure(h.module).state_dict() for h in (part, alone))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    # The Stage B checkpoint has no vision tower: the output is empty, as in ComfyUI.
    assert vision.unCLIPCheckpointLoader().run(ctx(env), ckpt_name="stable_cascade_stage_b.safetensors")[3] is None
    assert "nope.safetensors" in vision.unCLIPCheckpointLoader.check(env, {"ckpt_name": "nope.safetensors"})["ckpt_name"]
    assert "clip_vision" in vision.CLIPVisionLoader.check(env, {"clip_name": "nope.safetensors"})["clip_name"]


def entries():
    return [[torch.zeros(1, 77, 32), {"pooled_output": torch.zeros(1, 32)}],
            [torch.ones(1, 77, 32), {"pooled_output": torch.ones(1, 32), "unclip_conditioning": [{"x": 1}]}]]


def test_unclip_conditioning_appends_to_copies(env):
    cond = entries()
    out_ = ClipVisionOutput(torch.ones(1, 768))
    (got,) = vision.unCLIPConditioning().run(ctx(env), conditioning=cond, clip_vision_output=out_,
                                              strength=0.5, noise_augmentation=0.1)
    item = {"clip_vision_output": out_, "strength": 0.5, "noise_augmentation": 0.1}
    assert got[0][1]["unclip_conditioning"] == [item]
    assert got[1][1]["unclip_conditioning"] == [{"x": 1}, item]
    assert cond[1][1]["unclip_conditioning"] == [{"x": 1}] and "unclip_conditioning" not in cond[0][1]
    assert got[1][0] is cond[1][0]
    (same,) = vision.unCLIPConditioning().run(ctx(env), conditioning=cond, clip_vision_output=out_,
                                               strength=0.0, noise_augmentation=0.0)
    assert same is cond


def test_controlnet_apply_records_chained_controls(env):
    (handle,) = cn_nodes.ControlNetLoader().run(ctx(env), control_net_name="demo_canny.safetensors")
    assert isinstance(handle.module, ControlNet)
    image = torch.rand(1, 64, 64, 3)
    pos, neg = entries(), entries()[:1]
    p1, n1 = cn_nodes.ControlNetApplyAdvanced().run(ctx(env), positive=pos, negative=neg, control_net=handle,
                                                    image=image, strength=0.8, start_percent=0.1, end_percent=0.9)
    c = p1[0][1]["control"]
    assert isinstance(c, ControlNetApplied) and p1[1][1]["control"] is c and n1[0][1]["control"] is c
    assert (c.strength, c.start_percent, c.end_percent, c.previous) == (0.8, 0.1, 0.9, None)
    assert torch.equal(c.hint, image.movedim(-1, 1)) and p1[0][1]["control_apply_to_uncond"] is False
    assert "control" not in pos[0][1]
    (p2,) = cn_nodes.ControlNetApply().run(ctx(env), conditioning=p1, control_net=handle, image=image, strength=1.5)
    assert p2[0][1]["control"].previous is c and p2[0][1]["control_apply_to_uncond"] is True
    assert cn_nodes.ControlNetApply().run(ctx(env), conditioning=pos, control_net=handle, image=image,
                                          strength=0.0)[0] is pos
    with pytest.raises(TypeError, match="CONTROL_NET"):
        cn_nodes.ControlNetApply().run(ctx(env), conditioning=pos, control_net=ModelHandle(torch.nn.Linear(1, 1)),
                                       image=image, strength=1.0)
    assert cn_nodes.ControlNetLoader.check(env, {"control_net_name": "missing.safetensors"})
