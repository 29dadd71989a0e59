"""Uploads and /view: images only (decided by decoding), an allow-list served inline, security
headers on every reply, decompression bombs refused before decoding, hostile names → 4xx."""
from __future__ import annotations

import json
import threading

import pytest
from PIL import Image

from tests.server_harness import http, http_json, stub_server
from tests.stub_nodes import chain_prompt
from tests.upload_helpers import PAGES, bomb_png, multipart, png_bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uploads")
    with stub_server(tmp, max_body_bytes=256 * 1024) as (base, env, config):
        yield base, env, config


def upload(base, data, name="a.png", **fields):
    body, headers = multipart(data, name, **fields)
    status, _, raw = http("POST", base + "/upload/image", body, headers)
    return status, json.loads(raw)


@pytest.mark.parametrize("fmt,sent,stored,served", [
    ("PNG", "plain.png", "plain.png", "image/png"),
    ("JPEG", "photo.jpeg", "photo.jpeg", "image/jpeg"),
    ("PNG", "page.html", "page.png", "image/png"),       # the name lied: stored as what it is
    ("WEBP", "pic.png", "pic.webp", "image/webp"),
    ("GIF", "anim.svg", "anim.gif", "image/gif"),
    ("PNG", "noext", "noext.png", "image/png"),
])
def test_upload_keeps_image_bytes_and_names_the_decoded_format(server, fmt, sent, stored, served):
    base, _, config = server
    data = png_bytes((9, 7), fmt=fmt)
    status, body = upload(base, data, sent, subfolder="kept")
    assert status == 200 and body == {"name": stored, "subfolder": "kept", "type": "input"}
    assert (config.input_dir / "kept" / stored).read_bytes() == data  # byte for byte
    status, headers, raw = http("GET", f"{base}/view?filename={stored}&subfolder=kept&type=input")
    assert status == 200 and raw == data and headers["Content-Type"] == served
    assert headers["Content-Disposition"].startswith("inline")


POLYGLOTS = {
    "gif-header.gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00" + PAGES[".html"].encode(),
    "truncated.png": png_bytes((64, 64))[:60],
    "empty.png": b"",
    "png-then-html.html": b"\x89PNG\r\n\x1a\n" + PAGES[".html"].encode(),
}


@pytest.mark.parametrize("name,data", [(f"evil{ext or '_noext'}", page.encode())
                                       for ext, page in PAGES.items()] + list(POLYGLOTS.items()))
def test_upload_refuses_everything_that_is_not_a_decodable_image(server, name, data):
    base, _, config = server
    status, body = upload(base, data, name, subfolder="refused")
    assert status == 400 and body["error"]["type"] == "not_an_image"
    assert not (config.input_dir / "refused").exists() or not any((config.input_dir / "refused").iterdir())


@pytest.mark.parametrize("ext", sorted(set(PAGES) | {".txt", ".json", ".js", ".css", ".tif"}))
def test_view_serves_inline_only_allowlisted_image_types(server, ext):
    base, _, config = server
    name = f"planted{ext}"
    (config.output_dir / name).write_text(PAGES.get(ext, PAGES[".html"]))
    status, headers, _ = http("GET", f"{base}/view?filename={name}")
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    if ext == ".png":  # named as an allow-listed image: rendered only as an image, never sniffed
        assert headers["Content-Type"] == "image/png"
    else:
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in headers["Content-Security-Policy"]


def raw_ws_refusal(base: str) -> tuple[int, dict]:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "http://evil.example"}
    status, hdrs, _ = http("GET", base + "/ws?clientId=x", None, headers)
    return status, hdrs


def test_every_reply_carries_nosniff_and_refuses_framing(server):
    base, _, config = server
    (config.output_dir / "ok.png").write_bytes(png_bytes())
    replies = [http("GET", base + path) for path in (
        "/", "/index.html", "/nope.js", "/queue", "/history", "/object_info", "/system_stats",
        "/api/queue", "/view", "/view?filename=missing.png", "/view?filename=ok.png",
        "/view?filename=ok.png&preview=webp;50", "/jobs/unknown")]
    replies.append(http("DELETE", base + "/queue"))                                       # 405
    replies.append(http("POST", base + "/prompt", b"{", {"Content-Type": "application/json"}))
    replies.append(http("POST", base + "/queue", b"{}", {"Origin": "http://evil.example"}))
    replies.append(http("POST", base + "/prompt", b"x" * 300_000))                      # 413
    status, headers = raw_ws_refusal(base)
    assert status == 403
    replies.append((status, headers, b""))
    for status, headers, _ in replies:
        assert headers.get("X-Content-Type-Options") == "nosniff", (status, headers)
        assert headers.get("X-Frame-Options") == "SAMEORIGIN", (status, headers)
        assert "frame-ancestors 'self'" in headers.get("Content-Security-Policy", "")


def test_editor_page_sends_a_script_policy(server):
    base, _, _ = server
    _, headers, _ = http("GET", base + "/")
    csp = headers["Content-Security-Policy"]
    for directive in ("script-src 'self'", "object-src 'none'", "base-uri 'none'",
                      "frame-ancestors 'self'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


# -- decompression bombs -------------------------------------------------------------------------

def test_upload_refuses_too_many_pixels_before_decoding(server):
    base, _, config = server
    for size in ((9000, 9000), (15000, 15000)):  # over our limit; over Pillow's own bomb limit
        status, body = upload(base, bomb_png(*size), "bomb.png", subfolder="bombs")
        assert status == 413 and body["error"]["type"] == "image_too_large"
        assert "limit" in body["error"]["message"] and f"{size[0] * size[1]:,}" in body["error"]["message"]
    assert not (config.input_dir / "bombs").exists() or not any((config.input_dir / "bombs").iterdir())


@pytest.mark.parametrize("query", ["preview=webp;80", "preview=jpeg", "channel=a", "channel=rgb"])
def test_view_previews_refuse_bombs(server, query):
    base, _, config = server
    (config.output_dir / "big.png").write_bytes(bomb_png(9000, 9000))
    (config.output_dir / "huge.png").write_bytes(bomb_png(15000, 15000))
    for name in ("big.png", "huge.png"):
        status, body = http_json("GET", f"{base}/view?filename={name}&{query}")
        assert status == 413 and body["error"]["type"] == "image_too_large", body


def test_pixel_limit_is_configurable(server, monkeypatch):
    base, _, _ = server
    monkeypatch.setenv("CASCADE_MAX_IMAGE_PIXELS", "100")
    status, body = upload(base, png_bytes((20, 20)), "small.png")
    assert status == 413 and "100 pixels" in body["error"]["message"]
    monkeypatch.setenv("CASCADE_MAX_IMAGE_PIXELS", "400")
    assert upload(base, png_bytes((20, 20)), "small.png")[0] == 200


def test_a_raised_limit_is_the_only_limit(monkeypatch, tmp_path):
    """Pillow refuses beyond twice its own default (~179 MP) while opening; a limit raised to
    300 MP must admit a 200 MP image, not refuse it "exceeding 300 MP"."""
    from image_limits import TooManyPixels, open_checked

    monkeypatch.setattr("PIL.Image.MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    monkeypatch.setenv("CASCADE_MAX_IMAGE_PIXELS", "300000000")
    with open_checked(bomb_png(20000, 10000)) as image:  # header only: nothing is decoded
        assert image.size == (20000, 10000)
    monkeypatch.setenv("CASCADE_MAX_IMAGE_PIXELS", "100000000")
    with pytest.raises(TooManyPixels):
        open_checked(bomb_png(20000, 10000))


def test_load_image_refuses_a_bomb_naming_size_and_limit(tmp_path):
    from nodes.images import LoadImage
    from tests.nodes_helpers import tmp_config
    from runtime.env import Env
    from engine.schema import RunContext

    env = Env(tmp_config(tmp_path, demo=False))
    (tmp_path / "input").mkdir(exist_ok=True)
    (env.config.input_dir / "bomb.png").write_bytes(bomb_png(9000, 9000))
    errors = LoadImage.check(env, {"image": "bomb.png"})
    assert "9000×9000" in errors["image"] and "67,108,864" in errors["image"]
    ctx = RunContext(node_id="1", prompt_id="p", env=env, cancel=threading.Event())
    with pytest.raises(ValueError, match="9000×9000"):
        LoadImage().run(ctx, "bomb.png")


# -- hostile names on the file routes ---------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "filename=" + "a" * 3000 + ".png", "filename=ok.png&subfolder=" + "a/" * 3000,
    "filename=ok.png&subfolder=" + "b" * 5000, "filename=%ff%fe.png", "filename=ok.png&subfolder=%ed%a0%80",
    "filename=ok.png&type=" + "x" * 5000, "filename=%0a.png", "filename=ok.png&preview=webp;" + "9" * 5000,
    "filename=ok.png&channel=" + "c" * 5000,
])
def test_view_hostile_strings_are_4xx(server, query):
    base, _, config = server
    (config.output_dir / "ok.png").write_bytes(png_bytes())
    status, _, raw = http("GET", f"{base}/view?{query}")
    assert status in (400, 404) and b'"error"' in raw and len(raw) < 2000


@pytest.mark.parametrize("name,fields", [
    (b"a" * 300 + b".png", {}), (b"\xff\xfe.png", {}), (b"\xed\xa0\x80.png", {}),
    (b"a\x01b.png", {}), ("ok.png", {"subfolder": "a" * 10_000}),
    ("ok.png", {"subfolder": "a/" * 3000}), ("ok.png", {"subfolder": b"\xff\xfe"}),
    ("ok.png", {"type": "t" * 10_000}), ("ok.png", {"type": b"\xff"}),
])
def test_upload_hostile_strings_are_4xx(server, name, fields):
    base, _, config = server
    before = sorted(p.name for p in config.input_dir.rglob("*"))
    body, headers = multipart(png_bytes(), name, **fields)
    status, _, raw = http("POST", base + "/upload/image", body, headers)
    assert status in (400, 404) and b'"error"' in raw
    assert sorted(p.name for p in config.input_dir.rglob("*")) == before


def test_server_still_answers_after_hostile_input(server):
    base, _, _ = server
    assert http_json("POST", base + "/prompt", {"prompt": chain_prompt()})[0] == 200


def test_a_long_multibyte_name_is_shortened_by_bytes_not_refused(server):
    """127 × 'é' is 254 bytes, a valid name without an extension; adding the decoded format's
    ".png" must shorten it by bytes, not refuse it as 258 bytes."""
    base, _, _ = server
    status, body = upload(base, png_bytes((4, 4)), "é" * 127)
    assert status == 200 and body["name"].endswith(".png")
    assert len(body["name"].encode()) <= 255
