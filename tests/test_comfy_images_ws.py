"""SaveImageWebsocket through the real server: ComfyUI's websockets_api_example_ws_images client gets the PNGs.

The client function is shaped like ComfyUI's script_examples/websockets_api_example_ws_images.py (only the
`websocket` module differs: the stdlib client in tests/ws_client.py stands in for websocket-client).
"""
from __future__ import annotations

import io
import json
import struct
import urllib.request
import uuid

import numpy as np
from PIL import Image

from nodes.comfy.images import NODES as IMAGE_NODES
from tests import ws_client as websocket
from tests.server_harness import collect_until_done, connect_ws, http_json, make_config, running_server
from tests.stub_nodes import StubEnv

REGISTRY = {name: IMAGE_NODES[name] for name in ("EmptyImage", "ImageInvert", "SaveImageWebsocket")}


def prompt_text(color: int) -> dict:
    return {
        "5": {"class_type": "EmptyImage", "inputs": {"width": 6, "height": 4, "batch_size": 2, "color": color}},
        "8": {"class_type": "ImageInvert", "inputs": {"image": ["5", 0]}},
        "save_image_websocket_node": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["8", 0]}},
    }


def example_client(server_address: str, prompt: dict) -> dict:
    client_id = str(uuid.uuid4())

    def queue_prompt(prompt):
        p = {"prompt": prompt, "client_id": client_id}
        data = json.dumps(p).encode("utf-8")
        req = urllib.request.Request("http://{}/api/prompt".format(server_address), data=data)
        return json.loads(urllib.request.urlopen(req).read())

    def get_images(ws, prompt):
        prompt_id = queue_prompt(prompt)["prompt_id"]
        output_images = {}
        current_node = ""
        while True:
            out = ws.recv()
            if isinstance(out, str):
                message = json.loads(out)
                if message["type"] == "executing":
                    data = message["data"]
                    if data["prompt_id"] == prompt_id:
                        if data["node"] is None:
                            break  # Execution is done
                        else:
                            current_node = data["node"]
            else:
                if current_node == "save_image_websocket_node":
                    images_output = output_images.get(current_node, [])
                    images_output.append(out[8:])
                    output_images[current_node] = images_output
        return output_images

    ws = websocket.WebSocket()
    ws.connect("ws://{}/ws?clientId={}".format(server_address, client_id))
    images = get_images(ws, prompt)
    ws.close()
    return images


def test_comfyui_ws_images_client_receives_the_pngs(tmp_path):
    config = make_config(tmp_path)
    with running_server(config, REGISTRY, StubEnv(config.output_dir)) as base:
        images = example_client(base.replace("http://", ""), prompt_text(0x102030))
        # run again with the same prompt: the node is never cached, the images come again
        again = example_client(base.replace("http://", ""), prompt_text(0x102030))
    for got in (images, again):
        assert list(got) == ["save_image_websocket_node"] and len(got["save_image_websocket_node"]) == 2
        for data in got["save_image_websocket_node"]:
            with Image.open(io.BytesIO(data)) as img:
                assert img.format == "PNG" and img.size == (6, 4)
                assert np.array_equal(np.asarray(img), np.full((4, 6, 3), [255 - 0x10, 255 - 0x20, 255 - 0x30]))
    assert not list(config.output_dir.glob("**/*.png"))  # nothing written to disk


def test_frame_headers_for_plain_and_metadata_clients(tmp_path):
    config = make_config(tmp_path)
    with running_server(config, REGISTRY, StubEnv(config.output_dir)) as base:
        plain = connect_ws(base, "plain")
        rich = connect_ws(base, "rich")
        rich.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        frames = {}
        for sid, ws in (("plain", plain), ("rich", rich)):
            status, body = http_json("POST", base + "/prompt", {"prompt": prompt_text(0), "client_id": sid})
            assert status == 200, body
            frames[sid] = [m for m in collect_until_done(ws, body["prompt_id"]) if isinstance(m, bytes)]
        plain.close()
        rich.close()
    assert len(frames["plain"]) == 2
    for frame in frames["plain"]:
        assert struct.unpack(">II", frame[:8]) == (1, 2)  # PREVIEW_IMAGE, format 2 = PNG
        assert frame[8:16] == b"\x89PNG\r\n\x1a\n"
    assert len(frames["rich"]) == 2
    for frame in frames["rich"]:
        kind, size = struct.unpack(">II", frame[:8])
        meta = json.loads(frame[8:8 + size])
        assert kind == 4 and meta["image_type"] == "image/png" and meta["node_id"] == "save_image_websocket_node"
        assert frame[8 + size:16 + size] == b"\x89PNG\r\n\x1a\n"
