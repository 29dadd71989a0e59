"""Every shipped workflow (web/workflows/*.json) is served fitted to the weights on disk and validates there:
in --demo mode each loader names the demo file of its own kind and name (demo_inpainting for inpainting)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.graph import validate_prompt
from engine.workflow import document_to_prompt
from nodes.registry import NODES
from tests.nodes_helpers import demo_env, tmp_config
from tests.server_harness import http, http_json, running_server

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.stem for p in (ROOT / "web" / "workflows").glob("*.json"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    config = tmp_config(tmp_path_factory.mktemp("shipped"), web_dir=ROOT / "web")
    env = demo_env(config)
    env.ensure_demo_weights()
    with running_server(config, NODES, env) as base:
        yield base, env


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_workflow_is_fitted_and_valid_on_demo_weights(served, name):
    base, env = served
    status, doc = http_json("GET", f"{base}/workflows/{name}.json")
    assert status == 200
    files = [n["inputs"]["file"] for n in doc["nodes"].values() if "file" in n.get("inputs", {})]
    assert files and all(Path(f).name.startswith("demo_") for f in files)
    result = validate_prompt(document_to_prompt(doc), NODES, env)
    assert result.ok, result.node_errors


def test_each_controlnet_example_gets_its_own_demo_controlnet(served):
    base, _ = served
    for name, want in (("controlnet_canny", "demo_canny"), ("controlnet_inpainting", "demo_inpainting"),
                       ("controlnet_super_resolution", "demo_super_resolution")):
        _, doc = http_json("GET", f"{base}/workflows/{name}.json")
        (file,) = [n["inputs"]["file"] for n in doc["nodes"].values() if n["class_type"] == "LoadControlNet"]
        assert Path(file).stem == want


def test_workflow_route_keeps_to_its_folder(served):
    base, _ = served
    for rel in ("workflows/..%2Fserver.json", "workflows/%2e%2e/x.json", "workflows/a/b.json", "workflows/nope.json"):
        status, _, body = http("GET", f"{base}/{rel}")
        assert status in (400, 404), rel
        assert b"create_app" not in body


def test_demo_mode_draws_the_example_input_once_and_never_replaces_a_users_file(tmp_path):
    from PIL import Image

    from runtime.env import Env

    config = tmp_config(tmp_path)
    Env(config)
    drawn = Image.open(Path(config.input_dir) / "example.png")
    assert drawn.size == (512, 512) and len(set(drawn.getdata())) > 4  # a picture, not a flat fill
    mine = tmp_path / "mine"
    config2 = tmp_config(mine)
    Image.new("RGB", (7, 5), (1, 2, 3)).save(Path(config2.input_dir) / "example.png")
    Env(config2)
    assert Image.open(Path(config2.input_dir) / "example.png").size == (7, 5)
