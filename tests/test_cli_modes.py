"""`server.py --run` / `cli.py` run a document's bypassed and muted nodes as the server does."""
from __future__ import annotations

import io

import cli
from tests.server_harness import make_config
from tests.web_stub_nodes import WEB_STUB_NODES, WebStubEnv, pipeline_document


def seeded(mode: str) -> dict:
    """The stub pipeline whose sampler seed comes from SeedValue 10 (`mode`), fed by SeedValue 9."""
    doc = pipeline_document(delay=0.0)
    doc["nodes"]["9"] = {"class_type": "SeedValue", "inputs": {"value": 7}, "ui": {"pos": [20, 440]}}
    doc["nodes"]["10"] = {"class_type": "SeedValue", "inputs": {"value": ["9", 0]},
                          "ui": {"pos": [320, 440], "mode": mode}}
    doc["nodes"]["6"]["inputs"]["seed"] = ["10", 0]
    return doc


def run(doc: dict, tmp_path) -> tuple[int, str]:
    config = make_config(tmp_path)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    code, _ = cli.run_workflow(doc, config, WebStubEnv(config.output_dir), WEB_STUB_NODES, stream=out)
    return code, out.getvalue()


def test_a_bypassed_node_passes_its_input_on_when_run_from_the_command_line(tmp_path):
    code, text = run(seeded("bypass"), tmp_path)
    assert code == 0, text  # the class is known here, so 9's INT goes on to the sampler's seed


def test_a_muted_node_leaves_its_dependant_without_the_input_with_the_reason(tmp_path):
    code, text = run(seeded("mute"), tmp_path)
    assert code == 2 and "node 9 is muted" not in text and "node 10 is muted" in text
