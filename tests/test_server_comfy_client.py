"""An unmodified ComfyUI-style API client (shaped like ComfyUI's websockets_api_example.py).

Only the `websocket` module differs: `websocket-client` is not installed here, so the stdlib
client in tests/ws_client.py stands in with the same `WebSocket().connect/recv` calls.
"""
import io
import json
import urllib.parse
import urllib.request
import uuid

from PIL import Image

from tests import ws_client as websocket
from tests.server_harness import stub_server
from tests.stub_nodes import chain_prompt


def run_example_client(server_address: str, prompt: dict) -> dict:
    client_id = str(uuid.uuid4())

    def queue_prompt(prompt, prompt_id):
        p = {"prompt": prompt, "client_id": client_id, "prompt_id": prompt_id}
        data = json.dumps(p).encode("utf-8")
        req = urllib.request.Request("http://{}/prompt".format(server_address), data=data)
        urllib.request.urlopen(req).read()

    def get_image(filename, subfolder, folder_type):
        data = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        url_values = urllib.parse.urlencode(data)
        with urllib.request.urlopen("http://{}/view?{}".format(server_address, url_values)) as response:
            return response.read()

    def get_history(prompt_id):
        with urllib.request.urlopen("http://{}/history/{}".format(server_address, prompt_id)) as response:
            return json.loads(response.read())

    def get_images(ws, prompt):
        prompt_id = str(uuid.uuid4())
        queue_prompt(prompt, prompt_id)
        output_images = {}
        while True:
            out = ws.recv()
            if isinstance(out, str):
                message = json.loads(out)
                if message["type"] == "executing":
                    data = message["data"]
                    if data["node"] is None and data["prompt_id"] == prompt_id:
                        break  # Execution is done
            else:
                continue  # previews are binary data

        history = get_history(prompt_id)[prompt_id]
        for node_id in history["outputs"]:
            node_output = history["outputs"][node_id]
            images_output = []
            if "images" in node_output:
                for image in node_output["images"]:
                    image_data = get_image(image["filename"], image["subfolder"], image["type"])
                    images_output.append(image_data)
            output_images[node_id] = images_output
        return output_images

    ws = websocket.WebSocket()
    ws.connect("ws://{}/ws?clientId={}".format(server_address, client_id))
    images = get_images(ws, prompt)
    ws.close()
    return images


def test_comfyui_example_client_runs_green(tmp_path):
    with stub_server(tmp_path) as (base, _, _):
        address = base.replace("http://", "")
        prompt = chain_prompt(value=100)
        prompt["3"]["inputs"]["factor"] = 1.5
        images = run_example_client(address, prompt)
    assert list(images) == ["4"] and len(images["4"]) == 1
    image = Image.open(io.BytesIO(images["4"][0]))
    assert image.size == (8, 8) and image.getpixel((0, 0)) == (150, 150, 150)
