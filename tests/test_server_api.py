"""Every HTTP route, bare and under /api, against the real server with stub nodes."""
import io
import json
import uuid

import pytest
from PIL import Image

from tests.server_harness import http, http_json, stub_server, wait_for
from tests.stub_nodes import chain_prompt

SLOW = {"1": {"class_type": "Const", "inputs": {"value": 1}},
        "2": {"class_type": "Slow", "inputs": {"x": ["1", 0], "steps": 1000, "delay": 0.01,
                                               "preview": False}},
        "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    (tmp / "web" / "workflows").mkdir(parents=True)
    (tmp / "web" / "index.html").write_text("<!doctype html><title>editor</title>")
    (tmp / "web" / "workflows" / "default.json").write_text('{"version": 1}')
    (tmp / "weights" / "stage_c" / "sub").mkdir(parents=True)
    (tmp / "weights" / "stage_c" / "a.safetensors").write_bytes(b"x")
    (tmp / "weights" / "stage_c" / "sub" / "b.safetensors").write_bytes(b"x")
    (tmp / "weights" / "stage_c" / "notes.txt").write_text("not a model")
    with stub_server(tmp) as (base, env, config):
        yield base, env, config


def submit(base, prompt, **extra):
    status, body = http_json("POST", base + "/prompt", {"prompt": prompt, **extra})
    assert status == 200, body
    return body


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_prompt_wait_history_and_view(server, prefix):
    base, env, _ = server
    status, body = http_json("POST", base + prefix + "/prompt?wait=true",
                             {"prompt": chain_prompt(value=uuid.uuid4().int % 200)})
    assert status == 200 and body["node_errors"] == {}
    assert body["status"]["status_str"] == "success" and body["status"]["completed"]
    image = body["outputs"]["4"]["images"][0]
    status, hist = http_json("GET", f"{base}{prefix}/history/{body['prompt_id']}")
    assert hist[body["prompt_id"]]["outputs"]["4"]["images"][0] == image
    assert hist[body["prompt_id"]]["prompt"][1] == body["prompt_id"]
    status, headers, raw = http("GET", f"{base}{prefix}/view?filename={image['filename']}&type=output")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(raw)).size == (8, 8)
    status, _, raw = http("GET", f"{base}{prefix}/view?filename={image['filename']}&preview=jpeg;50")
    assert status == 200 and raw[:2] == b"\xff\xd8"
    status, _, raw = http("GET", f"{base}{prefix}/view?filename={image['filename']}&preview=webp;80")
    assert raw[:4] == b"RIFF"
    status, _, raw = http("GET", f"{base}{prefix}/view?filename={image['filename']}&channel=a")
    assert Image.open(io.BytesIO(raw)).mode == "L"
    status, _, _ = http("GET", f"{base}{prefix}/view?filename=missing.png")
    assert status == 404


def test_caller_prompt_id_number_and_duplicates(server):
    base, _, _ = server
    pid = str(uuid.uuid4())
    body = submit(base, chain_prompt(value=11), prompt_id=pid, number=5)
    assert body["prompt_id"] == pid and body["number"] == 5
    status, err = http_json("POST", base + "/prompt", {"prompt": chain_prompt(), "prompt_id": pid})
    assert status == 400 and "already in use" in err["error"]["message"]
    wait_for(lambda: http_json("GET", f"{base}/history/{pid}")[1])


def test_document_accepted_and_stored_as_workflow(server):
    base, _, _ = server
    doc = {"version": 1, "nodes": {k: {**v, "ui": {"pos": [0, 0]}} for k, v in
                                   chain_prompt(value=17).items()}, "ui": {"notes": []}}
    status, body = http_json("POST", base + "/prompt?wait=1", {"prompt": doc})
    assert status == 200, body
    extra = body["prompt"][3]
    assert extra["extra_pnginfo"]["workflow"] == doc
    assert "ui" not in body["prompt"][2]["1"]


def test_validation_errors_are_400_with_node_errors(server):
    base, _, _ = server
    status, body = http_json("POST", base + "/prompt", {"prompt": {"1": {"class_type": "Const",
                                                                         "inputs": {"value": 1}}}})
    assert status == 400 and body["error"]["type"] == "prompt_no_outputs"
    status, body = http_json("POST", base + "/prompt", {"client_id": "x"})
    assert status == 400 and body["error"]["type"] == "no_prompt"
    bad = chain_prompt()
    bad["3"]["inputs"]["mode"] = "pow"
    status, body = http_json("POST", base + "/api/prompt", {"prompt": bad})
    assert status == 400 and body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["3"]["errors"][0]["type"] == "value_not_in_list"
    status, body = http_json("POST", base + "/prompt",
                             {"prompt": {"1": {"class_type": "Missing", "inputs": {}}}})
    assert status == 400 and body["error"]["type"] == "invalid_prompt"


def test_partial_execution_targets_and_200_with_node_errors(server):
    base, env, _ = server
    prompt = chain_prompt(value=23)
    prompt["5"] = {"class_type": "Show", "inputs": {}}
    status, body = http_json("POST", base + "/prompt?wait=true", {"prompt": prompt})
    assert status == 200 and "5" in body["node_errors"]
    prompt = chain_prompt(value=29)
    prompt["6"] = {"class_type": "Show", "inputs": {"x": ["1", 0]}}
    status, body = http_json("POST", base + "/prompt?wait=true",
                             {"prompt": prompt, "partial_execution_targets": ["6"]})
    assert status == 200 and list(body["outputs"]) == ["6"]
    assert body["prompt"][4] == ["6"]


def test_queue_interrupt_jobs_cancel_front_pause(server):
    base, env, _ = server
    status, _ = http_json("POST", base + "/queue", {"pause": True})
    assert status == 200
    a = submit(base, chain_prompt(value=101))["prompt_id"]
    b = submit(base, chain_prompt(value=102))["prompt_id"]
    c = submit(base, chain_prompt(value=103))["prompt_id"]
    status, body = http_json("POST", base + "/prompt?wait=true&timeout=0.2",
                             {"prompt": chain_prompt(value=104)})
    assert status == 202 and body["state"] == "pending"  # paused: the wait gives up politely
    http_json("POST", base + "/queue", {"delete": [body["prompt_id"]]})
    status, queue = http_json("GET", base + "/queue")
    assert [item[1] for item in queue["queue_pending"]] == [a, b, c] and queue["paused"]
    assert len(queue["queue_pending"][0]) == 5
    assert http_json("GET", base + "/prompt")[1] == {"exec_info": {"queue_remaining": 3}}
    assert http_json("POST", base + "/queue", {"front": c})[1]["moved"] is True
    status, job = http_json("GET", f"{base}/jobs/{a}")
    assert job["state"] == "pending" and job["queue_position"] == 1
    assert http_json("POST", f"{base}/jobs/{b}/cancel")[1]["cancelled"] is True
    assert http_json("POST", base + "/queue", {"delete": [a]})[0] == 200
    assert [i[1] for i in http_json("GET", base + "/queue")[1]["queue_pending"]] == [c]
    http_json("POST", base + "/queue", {"clear": True})
    assert http_json("GET", base + "/queue")[1]["queue_pending"] == []
    # A slow job: running state with progress, then interrupt by id.
    env.started.clear()
    slow = submit(base, SLOW)["prompt_id"]
    http_json("POST", base + "/queue", {"pause": False})
    wait_for(env.started.is_set)
    job = wait_for(lambda: (lambda j: j if j.get("progress", {}).get("value") else None)(
        http_json("GET", f"{base}/jobs/{slow}")[1]))
    assert job["state"] == "running" and job["progress"]["node"] == "2"
    assert job["progress"]["max"] == 1000
    assert http_json("POST", base + "/interrupt", {"prompt_id": "other"})[1] == {"interrupted": False}
    assert http_json("POST", base + "/api/interrupt", {"prompt_id": slow})[1] == {"interrupted": True}
    job = wait_for(lambda: (lambda j: j if j["state"] == "done" else None)(
        http_json("GET", f"{base}/jobs/{slow}")[1]))
    assert job["status"] == "interrupted"
    assert http_json("GET", f"{base}/jobs/nope")[0] == 404
    # A running job cancelled through the jobs route; a bare /interrupt with no body also works.
    env.started.clear()
    slow2 = submit(base, SLOW)["prompt_id"]
    wait_for(env.started.is_set)
    assert http_json("POST", f"{base}/jobs/{slow2}/cancel")[1]["cancelled"] is True
    wait_for(lambda: http_json("GET", f"{base}/history/{slow2}")[1])
    assert http("POST", base + "/interrupt")[0] == 200


def test_history_listing_paging_delete_clear(server):
    base, _, _ = server
    ids = [http_json("POST", base + "/prompt?wait=true",
                     {"prompt": chain_prompt(value=300 + i)})[1]["prompt_id"] for i in range(3)]
    status, hist = http_json("GET", base + "/history?max_items=2")
    assert list(hist) == ids[1:]
    status, hist = http_json("GET", base + "/api/history")
    assert list(hist)[-3:] == ids
    assert http_json("GET", base + "/history?max_items=x")[0] == 400
    assert http_json("GET", base + "/history/unknown")[1] == {}
    http_json("POST", base + "/history", {"delete": [ids[0]]})
    assert http_json("GET", f"{base}/history/{ids[0]}")[1] == {}
    http_json("POST", base + "/history", {"clear": True})
    assert http_json("GET", base + "/history")[1] == {}


def test_object_info_routes(server):
    base, _, _ = server
    status, info = http_json("GET", base + "/object_info")
    assert status == 200 and "Scale" in info and info["Scale"]["input_order"]["required"][0] == "x"
    assert http_json("GET", base + "/api/object_info/Scale")[1] == {"Scale": info["Scale"]}
    assert http_json("GET", base + "/object_info/Unknown") == (200, {})


def test_models_embeddings_system_features_free(server):
    base, env, config = server
    folders = http_json("GET", base + "/models")[1]
    assert "stage_c" in folders and "loras" in folders
    assert http_json("GET", base + "/models/stage_c")[1] == ["a.safetensors", "sub/b.safetensors"]
    assert http_json("GET", base + "/api/models/loras")[1] == []
    assert http_json("GET", base + "/models/..")[0] == 404
    assert http_json("GET", base + "/models/nope")[0] == 404
    assert http_json("GET", base + "/embeddings") == (200, [])
    stats = http_json("GET", base + "/system_stats")[1]
    assert {"os", "ram_total", "python_version", "pytorch_version"} <= set(stats["system"])
    assert stats["devices"][0]["type"] in ("cpu", "cuda")
    features = http_json("GET", base + "/features")[1]
    assert features == {"supports_preview_metadata": True, "max_upload_size": config.max_body_bytes}
    assert http_json("POST", base + "/free", {"unload_models": True})[0] == 200
    wait_for(lambda: env.freed)


def test_upload_image_suffix_identical_and_overwrite(server):
    base, _, config = server

    def upload(data, name="pic.png", **fields):
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                 .encode() for k, v in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                     f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n'.encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        status, _, raw = http("POST", base + "/upload/image", body,
                              {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return status, json.loads(raw)

    # Uploads must be images (see test_server_uploads.py): distinct tiny PNGs stand in for bytes.
    png = {}
    for i, word in enumerate(("one", "two", "three", "four", "x")):
        buf = io.BytesIO()
        Image.new("L", (2, 2), i * 40).save(buf, format="PNG")
        png[word] = buf.getvalue()
    assert upload(png["one"]) == (200, {"name": "pic.png", "subfolder": "", "type": "input"})
    assert upload(png["one"])[1]["name"] == "pic.png"  # identical bytes: reused
    assert upload(png["two"])[1]["name"] == "pic (1).png"
    assert upload(png["three"])[1]["name"] == "pic (2).png"
    assert upload(png["four"], overwrite="true")[1]["name"] == "pic.png"
    assert (config.input_dir / "pic.png").read_bytes() == png["four"]
    status, body = upload(png["x"], subfolder="masks", type="temp")
    assert status == 200 and (config.temp_dir / "masks" / "pic.png").is_file()
    assert upload(png["x"], name="../evil.png")[1]["name"] == "evil.png"  # basename only
    assert upload(png["x"], subfolder="../../etc")[0] == 403
    assert upload(png["x"], type="system")[0] == 400
    status, _, raw = http("GET", f"{base}/view?filename=pic.png&type=input")
    assert raw == png["four"]


def test_static_editor_and_workflows(server):
    base, _, _ = server
    status, headers, raw = http("GET", base + "/")
    assert status == 200 and b"editor" in raw and headers["Content-Type"].startswith("text/html")
    status, _, raw = http("GET", base + "/workflows/default.json")
    assert status == 200 and json.loads(raw) == {"version": 1}
    assert http("GET", base + "/nothing.js")[0] == 404


@pytest.mark.parametrize("path", ["/prompt", "/queue", "/history", "/object_info", "/models",
                                  "/embeddings", "/system_stats", "/features", "/history/x",
                                  "/object_info/Const", "/models/stage_c"])
def test_every_get_route_bare_and_under_api(server, path):
    base, _, _ = server
    bare, prefixed = http_json("GET", base + path), http_json("GET", base + "/api" + path)
    assert bare[0] == prefixed[0] == 200
    assert isinstance(bare[1], (dict, list)) and type(bare[1]) is type(prefixed[1])
