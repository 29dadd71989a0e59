"""Tiled Stage A decode (models/stage_a_tiles.py) against the untiled decode, on the tiny Stage A."""
from __future__ import annotations

import pytest
import torch

from models.stage_a import STAGE_A_PRESETS, StageA
from models.stage_a_tiles import AUTO_PIXELS, decode_tiled, receptive_radius, should_tile

TILE = 16  # latent pixels: 64 image pixels a tile core


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    a = StageA(STAGE_A_PRESETS["tiny"]).eval().requires_grad_(False)
    for p in a.parameters():
        p.normal_(0, 0.1)  # unclamped outputs stay in ~[-0.4, 0.4]: nothing hides under a clamp
    return a


def raw(net):
    return lambda z: net.decode_raw(z * net.config.scale_factor)


def seam_mask(h: int, w: int, margin: int) -> torch.Tensor:
    """Image pixels within `margin` of a tile boundary (tiles of 4*TILE image pixels)."""
    def near(n):
        a = torch.arange(n)
        return ((a % (4 * TILE)) < margin) | ((a % (4 * TILE)) >= 4 * TILE - margin)
    return near(h)[:, None] | near(w)[None, :]


def test_receptive_radius_of_the_published_and_tiny_decoders():
    assert receptive_radius(STAGE_A_PRESETS["full"]) == 14  # 12 blocks + transposed conv + one fine block
    assert receptive_radius(STAGE_A_PRESETS["tiny"]) == 3


def test_tiled_equals_untiled_in_interiors_and_within_the_bound_at_seams(net):
    torch.manual_seed(1)
    z = torch.randn(2, 4, 40, 52)  # 160×208 image: 3×4 tiles, the last ones partial
    want = raw(net)(z)
    got = decode_tiled(net, z, TILE, fn=raw(net))
    assert got.shape == want.shape == (2, 3, 160, 208) and got.dtype == want.dtype
    seams = seam_mask(160, 208, 4 * receptive_radius(net.config))
    ulp = torch.finfo(torch.float32).eps * want.abs().max()
    diff = (got - want).abs()
    assert diff[..., ~seams].max() <= 8 * ulp  # tile interiors: float rounding only
    assert diff[..., seams].max() <= 8 * ulp  # the stated bound where tiles meet (module doc)
    # the clamped decode (what the node runs) agrees the same way
    assert (decode_tiled(net, z, TILE) - net.decode(z)).abs().max() <= 8 * ulp


def test_a_halo_below_the_receptive_radius_shows_seams(net):
    """The check above can fail: without context the pixels next to a seam change, interiors do not."""
    torch.manual_seed(1)
    z = torch.randn(1, 4, 40, 52)
    want = raw(net)(z)
    got = decode_tiled(net, z, TILE, halo=0, fn=raw(net))
    seams = seam_mask(160, 208, 4 * receptive_radius(net.config))
    diff = (got - want).abs()
    assert diff[..., seams].max() > 1e-2
    assert diff[..., ~seams].max() <= 8 * torch.finfo(torch.float32).eps * want.abs().max()


def test_each_tile_is_bounded_so_peak_memory_stays_flat(net):
    seen = []
    hook = net.up_blocks.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[-2:])))
    try:
        for side in (40, 80):
            seen.clear()
            decode_tiled(net, torch.randn(1, 4, side, side), TILE)
            r = receptive_radius(net.config)
            assert max(max(s) for s in seen) <= TILE + 2 * r  # the largest piece does not grow with the size
    finally:
        hook.remove()
    with pytest.raises(ValueError):
        decode_tiled(net, torch.randn(1, 4, 8, 8), 0)


def test_auto_tiles_only_above_2048_squared():
    assert AUTO_PIXELS == 2048 * 2048
    assert not should_tile("auto", (512, 512)) and should_tile("auto", (512, 520))
    assert should_tile("always", (8, 8)) and not should_tile("never", (4096, 4096))
    with pytest.raises(ValueError):
        should_tile("sometimes", (8, 8))


def test_decode_node_takes_the_tiled_option(tmp_path, monkeypatch):
    import models.stage_a_tiles as tiles
    import runtime.env
    monkeypatch.setattr(runtime.env, "native_bf16", lambda device: False)  # fp32 Stage A: the bound below is fp32's
    from nodes.registry import NODES
    from nodes.types import StageBLatent
    from tests.nodes_helpers import loaded_nodes

    env, ctx, _te, models = loaded_nodes(tmp_path)
    node = NODES["StageADecode"]
    assert [i for i in node.INPUTS if i.name == "tiled"][0].default == "auto"
    torch.manual_seed(2)
    latent = StageBLatent(torch.randn(1, 4, 150, 70), 600, 280)
    plain = node().run(ctx, models["stage_a"], latent, "never")[0]
    pieces = []
    real = tiles.decode_tiled
    monkeypatch.setattr(tiles, "DEFAULT_TILE", 32)  # small tiles so that the demo-size latent splits
    monkeypatch.setattr(tiles, "decode_tiled", lambda *a, **k: pieces.append(1) or real(*a, **k))
    tiled = node().run(ctx, models["stage_a"], latent, "always")[0]
    assert pieces and tiled.shape == plain.shape == (1, 600, 280, 3)
    assert (tiled - plain).abs().max() <= 8 * torch.finfo(torch.float32).eps


def test_validation_admits_a_decode_its_tiles_fit_and_counts_the_whole_image(tmp_path, monkeypatch):
    """Validation sizes Stage A Decode as it will run: tiled (auto above 2048²) its network peak is one
    piece's, so a size whose untiled decode cannot fit is admitted; with tiled never it is refused."""
    from runtime import admission
    from tests.test_nodes_admission import node_id_of, on_machine, prompt_of
    from tests.nodes_helpers import demo_env, tmp_config

    env = demo_env(tmp_config(tmp_path))
    prompt = prompt_of(env, size=4096, batch=1, full=False)
    a = node_id_of(prompt, "StageADecode")
    (tiled,) = [j for n, _, j in admission.jobs(env, prompt) if n == a]
    prompt[a]["inputs"]["tiled"] = "never"
    (untiled,) = [j for n, _, j in admission.jobs(env, prompt) if n == a]
    # The image itself (and its copies) is whole either way: the tiled estimate stays above it.
    image = 3 * 4096 * 4096 * 4 * admission.IMAGE_COPIES
    assert image < admission.job_bytes(tiled) < admission.job_bytes(untiled)
    between = (admission.job_bytes(tiled) + admission.job_bytes(untiled)) / 2
    on_machine(monkeypatch, env, between / admission.GIB, 0)
    assert a in env.admit(prompt)
    prompt[a]["inputs"]["tiled"] = "auto"
    assert a not in env.admit(prompt)


@pytest.mark.parametrize("comfy", [False, True])
def test_run_time_check_counts_the_whole_image_of_a_tiled_decode(tmp_path, monkeypatch, comfy):
    """A latent from elsewhere (sizes unknown at validation) is checked before decoding: tiled, the
    output image and its copies still take memory that grows with the size, so a too-big one is refused
    (Stage A Decode, and ComfyUI's VAEDecode, which did no check at all) before anything is decoded."""
    import nodes.comfy.latent as comfy_latent
    import nodes.stage_a as stage_a_nodes
    from nodes.comfy import types as C
    from nodes.types import StageBLatent
    from runtime import admission
    from tests.nodes_helpers import loaded_nodes
    from tests.test_nodes_admission import on_machine

    env, ctx, _te, models = loaded_nodes(tmp_path)
    on_machine(monkeypatch, env, 1, 0)  # 1 GiB: one 1024² piece fits, an 8192² image does not

    def never(*args, **kwargs):
        raise AssertionError("decoded although it cannot fit")
    monkeypatch.setattr(stage_a_nodes, "decode", never)
    monkeypatch.setattr(comfy_latent, "decode_tiled", never)
    latent = torch.zeros(1, 4, 2048, 2048)
    with pytest.raises(admission.MemoryRefused, match="8192×8192 at batch 1"):
        if comfy:
            comfy_latent.VAEDecode().run(ctx, {"samples": latent}, C.Vae("stage_a", stage_a=models["stage_a"]))
        else:
            stage_a_nodes.StageADecode().run(ctx, models["stage_a"], StageBLatent(latent, 8192, 8192), "auto")
