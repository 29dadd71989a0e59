"""The CONDITIONING socket is shared by both families: ComfyUI's CLIPTextEncode can feed our samplers (one
plain entry reads as our Conditioning, bit for bit), and what only KSampler understands is refused by name."""
from __future__ import annotations

import threading

import pytest
import torch

from engine.schema import RunContext
from nodes.comfy import types as CT
from nodes.registry import NODES
from tests.nodes_helpers import demo_env, tmp_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    env = demo_env(tmp_config(tmp_path_factory.mktemp("bridge")))
    ctx = RunContext("1", "p", env, threading.Event())
    (te,) = NODES["LoadTextEncoder"]().run(ctx, "demo_text_encoder.safetensors", "auto")
    (c,) = NODES["LoadStageC"]().run(ctx, "demo_stage_c.safetensors", "auto")
    return ctx, te, c


def sample_c(ctx, c, pos, neg):
    (out,) = NODES["StageCSampler"]().run(ctx, c, pos, neg, 256, 256, 1, 7, 2, 4.0, "euler", "simple", 2.0, 0.7)
    return out.samples


def test_clip_text_encode_feeds_our_stage_c_sampler_bit_for_bit(setup):
    ctx, te, c = setup
    ours = [NODES["TextEncode"]().run(ctx, te, t)[0] for t in ("a red cube", "")]
    comfy = [NODES["CLIPTextEncode"]().run(ctx, text=t, clip=CT.Clip(te))[0] for t in ("a red cube", "")]
    assert torch.equal(sample_c(ctx, c, *ours), sample_c(ctx, c, *comfy))


def test_what_only_ksampler_reads_is_refused_by_name(setup):
    ctx, te, c = setup
    (entries,) = NODES["CLIPTextEncode"]().run(ctx, text="x", clip=CT.Clip(te))
    (empty,) = NODES["TextEncode"]().run(ctx, te, "")
    with_prior = [[entries[0][0], {**entries[0][1], "stable_cascade_prior": torch.zeros(1, 16, 6, 6)}]]
    with pytest.raises(ValueError, match="stable_cascade_prior.*KSampler"):
        sample_c(ctx, c, with_prior, empty)
    with pytest.raises(ValueError, match="2 entries"):
        sample_c(ctx, c, entries + entries, empty)
