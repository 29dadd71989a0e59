"""Every size a node accepts comes out at exactly that size: server, CLI and the image-to-image nodes.

Sizes whose Stage B latent side is odd (H = 4 mod 8: 132, 140, 900, 1020 …) used to run Stage C and
then fail in Stage B's PixelUnshuffle; the grid is now rounded up inside and Stage A crops back.
"""
from __future__ import annotations

import io
import json
import threading
import urllib.parse
import uuid

import pytest
import torch
from PIL import Image

import cli
from engine.schema import RunContext
from models.sampling import stage_b_grid, stage_b_hw
from nodes.registry import NODES
from tests.nodes_helpers import demo_env, demo_server, node_id, small_default, tmp_config, write_weights
from tests.server_harness import collect_until_done, connect_ws, http, http_json

# (width, height): odd Stage B sides on one or both axes, the declared minimum, a wide strip.
SERVER_SIZES = [(132, 132), (1020, 140), (136, 900), (128, 128), (264, 8 * 17)]
CLI_SIZES = [(140, 132), (904, 128)]


def sized(doc: dict, width: int, height: int) -> dict:
    doc["nodes"][node_id(doc, "StageCSampler")]["inputs"].update(width=width, height=height)
    return doc


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with demo_server(tmp_path_factory.mktemp("sizes_server")) as served:
        yield served


@pytest.mark.parametrize("width,height", SERVER_SIZES)
def test_server_output_png_has_the_requested_size(server, width, height):
    base, env = server
    doc = sized(small_default(env, steps_c=1, steps_b=1), width, height)
    cid = uuid.uuid4().hex
    ws = connect_ws(base, cid)
    try:
        status, body = http_json("POST", base + "/prompt", {"prompt": doc, "client_id": cid})
        assert status == 200, body
        events = collect_until_done(ws, body["prompt_id"], timeout=120)
    finally:
        ws.close()
    assert any(isinstance(e, dict) and e["type"] == "execution_success" for e in events), events
    _, history = http_json("GET", f"{base}/history/{body['prompt_id']}")
    (image,) = history[body["prompt_id"]]["outputs"][node_id(doc, "SaveImage")]["images"]
    status, _, raw = http("GET", f"{base}/view?{urllib.parse.urlencode(image)}")
    assert status == 200
    with Image.open(io.BytesIO(raw)) as png:
        assert png.size == (width, height)


@pytest.mark.parametrize("width,height", CLI_SIZES)
def test_cli_output_png_has_the_requested_size(tmp_path, width, height):
    weights = tmp_path / "w"
    write_weights(weights)
    code = cli.main(["--weights", str(weights), "--output", str(tmp_path / "out"), "--input", str(tmp_path / "in"),
                     "--temp", str(tmp_path / "tmp"), "--demo", "--set", "StageCSampler.steps=1",
                     "--set", "StageBSampler.steps=1", "--set", f"StageCSampler.width={width}",
                     "--set", f"StageCSampler.height={height}"])
    assert code == 0
    (png,) = (tmp_path / "out").glob("*.png")
    with Image.open(png) as img:
        assert img.size == (width, height)


def test_stage_b_grid_is_even_and_covers_the_image():
    for side in range(64, 8200, 4):
        (h, w), (need, _) = stage_b_grid(side, side), stage_b_hw(side, side)
        assert h == w and h % 2 == 0 and need <= h <= need + 1
    assert stage_b_grid(9, 1001) == (252, 16)  # tiny sides get the smallest grid Stage B's levels can halve
    assert stage_b_grid(1024, 1024) == (256, 256)  # the official size is untouched


@pytest.mark.parametrize("width,height", [(201, 137), (37, 50), (1001, 9)])
def test_image_nodes_keep_odd_image_sizes(tmp_path, width, height):
    """EffNetEncode → C → B → A and StageAEncode → A return the image's own size, odd sides included."""
    config = tmp_config(tmp_path)
    env = demo_env(config)
    ctx = RunContext(node_id="1", prompt_id="p", env=env, cancel=threading.Event())
    files = {k: env.weight_files(k)[0] for k in ("stage_c", "stage_b", "stage_a", "text_encoder", "effnet")}
    image = torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(0))
    (effnet,) = NODES["LoadEffNet"]().run(ctx, files["effnet"], "auto")
    (stage_a,) = NODES["LoadStageA"]().run(ctx, files["stage_a"], "auto")
    (te,) = NODES["LoadTextEncoder"]().run(ctx, files["text_encoder"], "auto")
    (c,) = NODES["LoadStageC"]().run(ctx, files["stage_c"], "auto")
    (b,) = NODES["LoadStageB"]().run(ctx, files["stage_b"], "auto")
    (cond,) = NODES["TextEncode"]().run(ctx, te, "x")
    (c_latent,) = NODES["EffNetEncode"]().run(ctx, effnet, image)
    (c_out,) = NODES["StageCSampler"]().run(ctx, c, cond, cond, 1024, 1024, 1, 0, 2, 4.0, "ddpm", "simple", 2.0,
                                            0.7, denoise=0.5, init=c_latent)
    (b_out,) = NODES["StageBSampler"]().run(ctx, b, c_out, cond, cond, 0, 1, 1.1, "ddpm", "simple", 1.0, 0.7)
    (decoded,) = NODES["StageADecode"]().run(ctx, stage_a, b_out)
    assert tuple(decoded.shape) == (1, height, width, 3)
    (a_latent,) = NODES["StageAEncode"]().run(ctx, stage_a, image)
    (round_trip,) = NODES["StageADecode"]().run(ctx, stage_a, a_latent)
    assert tuple(round_trip.shape) == (1, height, width, 3)
    # A bare tensor (a custom node's Stage B latent) still decodes, at 4x its size.
    (bare,) = NODES["StageADecode"]().run(ctx, stage_a, a_latent.samples)
    assert tuple(bare.shape[1:3]) == tuple(4 * s for s in a_latent.samples.shape[-2:])


def test_saved_png_records_the_request(tmp_path):
    """The PNG's embedded prompt keeps the requested size (the rounding never leaks into the workflow)."""
    config = tmp_config(tmp_path)
    env = demo_env(config)
    doc = sized(small_default(env, steps_c=1, steps_b=1), 132, 140)
    code, (png,) = cli.run_workflow(doc, config, env, NODES)
    assert code == 0
    with Image.open(png) as img:
        assert img.size == (132, 140)
        prompt = json.loads(img.text["prompt"])
    c = prompt[node_id(doc, "StageCSampler")]["inputs"]
    assert (c["width"], c["height"]) == (132, 140)
