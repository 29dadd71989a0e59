"""POST /upload/mask (mask alpha into the original), GET /view_metadata/{folder}, GET /extensions."""
import io
import json
import struct

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.server_harness import http, http_json, stub_server
from tests.upload_helpers import bomb_png, multipart


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with stub_server(tmp_path_factory.mktemp("mask")) as (base, _, config):
        yield base, config


def png(image, text=None):
    buf = io.BytesIO()
    info = PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def upload_mask(base, data, ref, name="m.png", **fields):
    body, headers = multipart(data, name, original_ref=json.dumps(ref), **fields)
    status, _, raw = http("POST", base + "/upload/mask", body, headers)
    return status, json.loads(raw)


def test_mask_alpha_goes_into_the_original_keeping_its_text(server):
    base, config = server
    original = Image.new("RGB", (8, 4), (10, 20, 30))
    (config.input_dir / "orig.png").write_bytes(png(original, {"prompt": "{\"1\": {}}"}))
    mask = Image.new("RGBA", (4, 2), (0, 0, 0, 255))
    mask.putpixel((0, 0), (0, 0, 0, 0))  # scaled 2x onto the original
    status, reply = upload_mask(base, png(mask), {"filename": "orig.png", "type": "input"})
    assert status == 200 and reply == {"name": "m.png", "subfolder": "", "type": "input"}
    with Image.open(config.input_dir / "m.png") as out:
        assert out.mode == "RGBA" and out.size == (8, 4)
        assert out.text["prompt"] == "{\"1\": {}}"
        assert out.getpixel((7, 3)) == (10, 20, 30, 255) and out.getpixel((0, 0))[3] < 128


@pytest.mark.parametrize("ref, data, code, word", [
    ({"filename": "missing.png"}, None, 404, "original_ref"),
    ({"filename": "../x.png"}, None, 400, "file name"),
    ({"filename": "orig.png", "type": "elsewhere"}, None, 400, "type"),
    ("not json", None, 400, "original_ref"),
    ("[" * 100_000, None, 400, "original_ref"),  # json.loads recursed into a 500
    ({"filename": "orig.png"}, b"<html>", 400, "image"),
    ({"filename": "orig.png"}, bomb_png(20000, 20000), 413, "pixels"),
])
def test_mask_bad_input_is_4xx_naming_it(server, ref, data, code, word):
    base, config = server
    (config.input_dir / "orig.png").write_bytes(png(Image.new("RGB", (4, 4))))
    body, headers = multipart(data or png(Image.new("RGBA", (4, 4))), "m2.png",
                              original_ref=ref if isinstance(ref, str) else json.dumps(ref))
    status, _, raw = http("POST", base + "/upload/mask", body, headers)
    assert status == code and word in json.loads(raw)["error"]["message"], raw


def safetensors(meta):
    header = {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    if meta is not None:
        header["__metadata__"] = meta
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\x00" * 4


def test_view_metadata_reads_the_header_and_never_leaves_the_folder(server):
    base, config = server
    folder = config.weights_dir / "loras"
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "sub" / "a.safetensors").write_bytes(safetensors({"ss_network_dim": "4"}))
    (folder / "plain.safetensors").write_bytes(safetensors(None))
    (config.weights_dir / "secret.safetensors").write_bytes(safetensors({"k": "v"}))
    assert http_json("GET", base + "/view_metadata/loras?filename=sub/a.safetensors") == (
        200, {"ss_network_dim": "4"})
    assert http_json("GET", base + "/api/view_metadata/loras?filename=plain.safetensors")[0] == 404
    assert http_json("GET", base + "/view_metadata/loras?filename=none.safetensors")[0] == 404
    assert http_json("GET", base + "/view_metadata/nofolder?filename=a.safetensors")[0] == 404
    status, _ = http_json("GET", base + "/view_metadata/loras?filename=../secret.safetensors")
    assert status in (400, 403)
    status, reply = http_json("GET", base + "/view_metadata/loras?filename=a.ckpt")
    assert status == 400 and "safetensors" in reply["error"]["message"]
    assert http_json("GET", base + "/view_metadata/loras")[0] == 400
    (folder / "junk.safetensors").write_bytes(b"\xff" * 12)
    assert http_json("GET", base + "/view_metadata/loras?filename=junk.safetensors")[0] == 400


def test_extensions_is_an_empty_list(server):
    base, _ = server
    assert http_json("GET", base + "/extensions") == (200, [])
    assert http_json("GET", base + "/api/extensions") == (200, [])


def test_view_metadata_of_a_header_nested_too_deeply_is_a_400(server):
    base, config = server
    folder = config.weights_dir / "loras"
    folder.mkdir(parents=True, exist_ok=True)
    header = b'{"__metadata__":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    (folder / "deep.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    status, reply = http_json("GET", base + "/view_metadata/loras?filename=deep.safetensors")
    assert status == 400 and "nested too deeply" in reply["error"]["message"]


def test_view_metadata_reads_a_comfy_key_from_its_legacy_folder_too(server):
    """/models/diffusion_models lists unet/ files (ComfyUI's search order): their metadata is there."""
    base, config = server
    for folder in ("unet",):
        (config.weights_dir / folder).mkdir(parents=True, exist_ok=True)
        (config.weights_dir / folder / "m.safetensors").write_bytes(safetensors({"from": folder}))
    for key in ("diffusion_models", "unet"):
        status, meta = http_json("GET", f"{base}/view_metadata/{key}?filename=m.safetensors")
        assert status == 200 and meta == {"from": "unet"}, (key, meta)
