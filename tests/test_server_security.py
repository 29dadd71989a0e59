"""Safety: path traversal, symlinks, cross-origin refusal, body limits, bad JSON, token auth."""
import os
import uuid

import pytest

from server import create_app
from tests.server_harness import connect_ws, http, http_json, make_config, stub_server
from tests.stub_nodes import STUB_NODES, StubEnv, chain_prompt
from tests.ws_client import WebSocketError


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec")
    secret = tmp / "secret.txt"
    secret.write_text("top secret")
    with stub_server(tmp, max_body_bytes=64 * 1024) as (base, env, config):
        (config.output_dir / "ok.png").write_bytes(b"png")
        (config.output_dir / "page.html").write_text("<script>alert(1)</script>")
        os.symlink(secret, config.output_dir / "link.txt")
        os.symlink(tmp, config.output_dir / "linkdir")
        yield base, env, config


@pytest.mark.parametrize("query,expected", [
    ("filename=../secret.txt", 400),
    ("filename=/etc/passwd", 400),
    ("filename=ok.png&subfolder=../..", 403),
    ("filename=passwd&subfolder=/etc", 403),
    ("filename=link.txt", 403),            # a symlink out of output/
    ("filename=secret.txt&subfolder=linkdir", 403),
    ("filename=ok.png&type=system", 400),
    ("filename=ok.png&channel=zz", 400),
    ("filename=ok.png&preview=gif;1", 400),
    ("filename=", 400),
    ("filename=ok.png", 200),
])
def test_view_never_leaves_its_folder(server, query, expected):
    base, _, _ = server
    status, _, raw = http("GET", f"{base}/view?{query}")
    assert status == expected
    assert b"top secret" not in raw


def test_view_serves_html_as_download(server):
    base, _, _ = server
    status, headers, _ = http("GET", f"{base}/view?filename=page.html")
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"


def test_static_route_cannot_escape_web_dir(server):
    base, _, _ = server
    for path in ("/..%2fsecret.txt", "/%2e%2e/secret.txt", "/a/../../secret.txt"):
        status, _, raw = http("GET", base + path)
        assert status in (400, 403, 404) and b"top secret" not in raw


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
def test_cross_origin_state_change_refused(server, origin):
    base, _, _ = server
    status, body = http_json("POST", base + "/prompt", {"prompt": chain_prompt()},
                             {"Origin": origin})
    assert status == 403 and body["error"]["type"] == "forbidden"
    assert http_json("POST", base + "/queue", {"clear": True}, {"Origin": origin})[0] == 403
    assert http_json("POST", base + "/interrupt", {}, {"Sec-Fetch-Site": "cross-site"})[0] == 403


def test_same_origin_and_originless_requests_allowed(server):
    base, _, _ = server
    assert http_json("POST", base + "/queue", {"clear": True}, {"Origin": base})[0] == 200
    assert http_json("POST", base + "/queue", {"clear": True})[0] == 200
    assert http_json("GET", base + "/prompt", None, {"Origin": "http://evil.example"})[0] == 200


def test_cross_origin_websocket_refused(server):
    base, _, _ = server
    with pytest.raises(WebSocketError, match="403"):
        connect_ws(base, "x", headers={"Origin": "http://evil.example"})
    ws = connect_ws(base, "y", headers={"Origin": base})
    ws.close()


def test_dns_rebinding_host_refused(server):
    base, _, _ = server
    status, body = http_json("GET", base + "/queue", None, {"Host": "attacker.example:8188"})
    assert status == 403


def test_oversize_body_413_json(server):
    base, _, _ = server
    big = {"prompt": chain_prompt(), "extra_data": {"pad": "x" * 100_000}}
    status, body = http_json("POST", base + "/prompt", big)
    assert status == 413 and body["error"]["type"] == "payload_too_large"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'"text"', b"\xff\xfe"])
def test_malformed_json_is_400_not_500(server, raw):
    base, _, _ = server
    for route in ("/prompt", "/queue", "/history"):
        status, _, body = http("POST", base + route, raw, {"Content-Type": "application/json"})
        assert status == 400 and b'"error"' in body


@pytest.mark.parametrize("payload", [
    {"prompt": chain_prompt(), "client_id": 5},
    {"prompt": chain_prompt(), "extra_data": []},
    {"prompt": chain_prompt(), "number": "first"},
    {"prompt": chain_prompt(), "number": True},
    {"prompt": chain_prompt(), "partial_execution_targets": "4"},
    {"prompt": chain_prompt(), "prompt_id": 12},
    {"prompt": "not a graph"},
    {"prompt": {"1": "not a node"}},
    {"prompt": {"1": {"class_type": "Const", "inputs": [1]}}},
])
def test_wrong_types_are_400(server, payload):
    base, _, _ = server
    status, body = http_json("POST", base + "/prompt", payload)
    assert status == 400 and "error" in body


def test_queue_and_history_wrong_types(server):
    base, _, _ = server
    assert http_json("POST", base + "/queue", {"delete": "abc"})[0] == 400
    assert http_json("POST", base + "/queue", {"pause": "yes"})[0] == 400
    assert http_json("POST", base + "/queue", {"front": 3})[0] == 400
    assert http_json("POST", base + "/history", {"delete": [1]})[0] == 400
    assert http_json("POST", base + "/interrupt", {"prompt_id": 3})[0] == 400
    assert http_json("POST", base + "/upload/image", {})[0] == 400


def test_token_bearer_query_and_session_cookie(tmp_path):
    token = "s3cret-" + uuid.uuid4().hex
    with stub_server(tmp_path, token=token) as (base, _, _):
        assert http_json("GET", base + "/queue")[0] == 401
        assert http_json("GET", base + "/queue", None, {"Authorization": "Bearer wrong"})[0] == 401
        assert http_json("GET", base + "/queue", None, {"Authorization": f"Bearer {token}"})[0] == 200
        assert http_json("GET", f"{base}/queue?token={token}")[0] == 200
        status, headers, _ = http("GET", f"{base}/?token={token}")
        port = base.rsplit(":", 1)[1]
        set_cookie = headers.get("Set-Cookie", "")
        assert status == 200 and set_cookie.startswith(f"cascade_session_{port}=")
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/" in set_cookie
        cookie = set_cookie.split(";")[0]
        assert token not in set_cookie and cookie.split("=", 1)[1] != token
        assert http_json("GET", base + "/queue", None, {"Cookie": cookie})[0] == 200
        # the session id is random per opening, not derived from the token
        again = http("GET", f"{base}/?token={token}")[1]["Set-Cookie"].split(";")[0]
        assert again != cookie and http_json("GET", base + "/queue", None, {"Cookie": again})[0] == 200
        for forged in (f"cascade_session_{port}={token}", f"cascade_session_{port}=" + "A" * 43,
                       f"cascade_token={token}", cookie.replace(f"_{port}=", "_1="), ""):
            assert http_json("GET", base + "/queue", None, {"Cookie": forged})[0] == 401, forged
        with pytest.raises(WebSocketError, match="401"):
            connect_ws(base, "z")
        connect_ws(base, "z", f"&token={token}").close()
        connect_ws(base, "c", headers={"Cookie": cookie}).close()


def test_non_loopback_without_token_refuses_to_start(tmp_path):
    with pytest.raises(ValueError, match="token"):
        create_app(make_config(tmp_path, host="0.0.0.0"), STUB_NODES, StubEnv(tmp_path))


def test_main_refuses_non_loopback_without_token(tmp_path, capsys):
    import server
    with pytest.raises(SystemExit, match="token"):
        server.main(["--host", "0.0.0.0", "--data", str(tmp_path)])


def _multipart(data: bytes, name: str = "a.png", **fields) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"'
                 f'\r\nContent-Type: image/png\r\n\r\n'.encode() + data + b"\r\n")
    return (b"".join(parts) + f"--{boundary}--\r\n".encode(),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def test_upload_limits_and_symlinked_subfolder(server):
    base, _, config = server
    body, headers = _multipart(b"x" * 100_000)
    status, _, raw = http("POST", base + "/upload/image", body, headers)
    assert status == 413 and b"payload_too_large" in raw
    os.symlink(config.output_dir.parent, config.input_dir / "out")
    body, headers = _multipart(b"x", subfolder="out")
    assert http("POST", base + "/upload/image", body, headers)[0] == 403
    body, headers = _multipart(b"x", name="..")
    assert http("POST", base + "/upload/image", body, headers)[0] == 400
