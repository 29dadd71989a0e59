"""Run-time admission: sizes validation cannot know (an init image, an image to encode, a latent from
elsewhere) are checked by the node itself before anything runs, with validation's estimate and message.

Validation leaves an init image's size to run time (tests/test_nodes_admission.py); without this check
an image-to-image job of an 8192² image at batch 64 would simply run until the kernel killed the server.
"""
from __future__ import annotations


import pytest
import torch

from nodes import stage_a, stage_b, stage_c
from runtime import admission
from nodes import types as T
from runtime.admission import GIB, MemoryRefused
from nodes.registry import NODES
from tests.nodes_helpers import loaded_nodes

MIB = 1 << 20


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    env, ctx, te, models = loaded_nodes(tmp_path_factory.mktemp("admission_runtime"))
    (cond,) = NODES["TextEncode"]().run(ctx, te, "x")
    return env, ctx, cond, models


@pytest.fixture
def machine(loaded, monkeypatch):
    """Set the machine's memory and model budget (GiB); returns a list of calls that reached the models."""
    env = loaded[0]
    reached: list[str] = []

    def on(total_gib: float, budget_gib: float) -> list[str]:
        monkeypatch.setattr(admission, "device_total", lambda device: int(total_gib * GIB))
        monkeypatch.setattr(env.models, "budget_bytes", int(budget_gib * GIB))
        return reached

    def recorder(real, name):
        def call(*args, **kwargs):
            reached.append(name)
            # Past the point of refusal, a job meant to be refused would really run (tens of GiB):
            # stop it here, so the test fails fast on code that lacks the check.
            if refusing[0]:
                raise AssertionError(f"{name} reached the model for a job that cannot fit")
            return real(*args, **kwargs)
        return call

    refusing = [False]
    on.refusing = refusing
    monkeypatch.setattr(stage_c, "sample", recorder(stage_c.sample, "nodes.stage_c"))
    monkeypatch.setattr(stage_b, "sample", recorder(stage_b.sample, "nodes.stage_b"))
    monkeypatch.setattr(stage_a, "using", recorder(stage_a.using, "nodes.stage_a"))
    return on


def test_img2img_of_an_8192_image_at_batch_64_is_refused_before_sampling(loaded, machine):
    _, ctx, cond, models = loaded
    reached = machine(24, 24 * 0.4)
    machine.refusing[0] = True
    init = T.StageCLatent(torch.zeros(1, 16, 192, 192), 8192, 8192)  # EffNet Encode of an 8192² image
    with pytest.raises(MemoryRefused) as refused:
        NODES["StageCSampler"]().run(ctx, models["stage_c"], cond, cond, 1024, 1024, 64, 0, 1, 4.0, "ddpm",
                                     "simple", 2.0, 0.7, denoise=0.5, init=init)
    text = str(refused.value)
    # The limit is the device less what the models hold now (not the whole budget).
    limit = (24 * GIB - ctx.env.models.resident_bytes()) / GIB
    assert "8192×8192 at batch 64" in text and f"limit {limit:.1f} GiB" in text and "largest square size" in text
    assert reached == []


def test_img2img_at_the_official_size_runs(loaded, machine):
    _, ctx, cond, models = loaded
    reached = machine(24, 24 * 0.4)
    init = T.StageCLatent(torch.zeros(1, 16, 3, 3), 128, 128)
    (out,) = NODES["StageCSampler"]().run(ctx, models["stage_c"], cond, cond, 1024, 1024, 2, 0, 1, 4.0, "ddpm",
                                          "simple", 2.0, 0.7, denoise=0.5, init=init)
    assert tuple(out.samples.shape) == (2, 16, 3, 3) and reached == ["nodes.stage_c"]


def test_stage_b_and_stage_a_check_the_latent_they_are_given(loaded, machine):
    """A latent from elsewhere (a custom node, an encoded image) is sized where it arrives."""
    _, ctx, cond, models = loaded
    reached = machine(0.5, 0)  # a 512 MiB machine: the demo networks fit at 128², not at 2048² × 4
    machine.refusing[0] = True
    big_c = T.StageCLatent(torch.zeros(4, 16, 48, 48), 2048, 2048)
    with pytest.raises(MemoryRefused, match="limit 0.5 GiB"):
        NODES["StageBSampler"]().run(ctx, models["stage_b"], big_c, cond, cond, 0, 1, 1.1, "ddpm", "simple", 1.0, 0.7)
    big_b = T.StageBLatent(torch.zeros(4, 4, 512, 512), 2048, 2048)
    with pytest.raises(MemoryRefused, match="limit 0.5 GiB"):
        NODES["StageADecode"]().run(ctx, models["stage_a"], big_b)
    with pytest.raises(MemoryRefused, match="limit 0.5 GiB"):
        NODES["StageAEncode"]().run(ctx, models["stage_a"], torch.zeros(4, 2048, 2048, 3))
    assert reached == []
    machine.refusing[0] = False
    small_c = T.StageCLatent(torch.zeros(1, 16, 3, 3), 128, 128)
    (b_lat,) = NODES["StageBSampler"]().run(ctx, models["stage_b"], small_c, cond, cond, 0, 1, 1.1, "ddpm",
                                            "simple", 1.0, 0.7)
    (image,) = NODES["StageADecode"]().run(ctx, models["stage_a"], b_lat)
    assert tuple(image.shape) == (1, 128, 128, 3) and reached == ["nodes.stage_b", "nodes.stage_a"]
