"""Browser tests of issue 13 §2: bypass (Ctrl+B) and mute (Ctrl+M), drawn, stored, run by the server."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.server_harness import finished_entry, http_json
from tests.web_helpers import browser, document, open_editor, server  # noqa: F401
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser


def seeded_document() -> dict:
    """The stub pipeline with the sampler's seed from SeedValue 10, itself fed by SeedValue 9."""
    doc = pipeline_document(delay=0.0)
    doc["nodes"]["9"] = {"class_type": "SeedValue", "inputs": {"value": 7}, "ui": {"pos": [20, 440]}}
    doc["nodes"]["10"] = {"class_type": "SeedValue", "inputs": {"value": ["9", 0]}, "ui": {"pos": [320, 440]}}
    doc["nodes"]["6"]["inputs"]["seed"] = ["10", 0]
    return doc


def test_ctrl_b_bypasses_the_selection_and_the_server_passes_its_input_through(server, browser):
    page = open_editor(browser, server["base"], seeded_document())
    node = page.locator('.node[data-node-id="10"]')
    node.locator(".node-header").click()
    page.keyboard.press("Control+b")
    assert "mode-bypass" in node.get_attribute("class")
    assert node.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(74, 45, 94)"
    assert document(page)["nodes"]["10"]["ui"]["mode"] == "bypass"
    prompt_id = page.evaluate("() => cascade.runner.queue()")
    entry = finished_entry(server["base"], prompt_id)
    assert entry["status"]["status_str"] == "success"
    ran = entry["prompt"][2]
    assert "10" not in ran and ran["6"]["inputs"]["seed"] == ["9", 0]  # 10's INT input passed on
    # Ctrl+B again clears it; undo brings it back.
    page.keyboard.press("Control+b")
    assert "mode-bypass" not in node.get_attribute("class")
    assert "mode" not in document(page)["nodes"]["10"].get("ui", {})
    page.keyboard.press("Control+z")
    assert document(page)["nodes"]["10"]["ui"]["mode"] == "bypass"
    assert page.errors == []


def test_ctrl_m_mutes_and_what_needs_the_muted_node_fails_with_its_reason(server, browser):
    page = open_editor(browser, server["base"], seeded_document())
    node = page.locator('.node[data-node-id="9"]')
    node.locator(".node-header").click()
    page.keyboard.press("Control+m")
    assert "mode-mute" in node.get_attribute("class")
    assert float(node.evaluate("e => getComputedStyle(e).opacity")) < 1
    assert document(page)["nodes"]["9"]["ui"]["mode"] == "mute"
    status, reply = http_json("POST", server["base"] + "/prompt", {"prompt": document(page)})
    assert status == 400
    reason = reply["node_errors"]["10"]["errors"][0]
    assert reason["type"] == "required_input_missing" and reason["details"] == "value: node 9 is muted"
    assert page.errors == []


def test_save_api_writes_the_prompt_the_server_runs_with_bypassed_and_muted_nodes(server, browser):
    """Save API leaves bypassed and muted nodes out as Queue does: a file the API runs as the editor's
    run, not one with the bypassed node back in (the download must equal the server's own prompt)."""
    from engine.workflow import document_to_prompt
    from tests.web_stub_nodes import WEB_STUB_NODES

    page = open_editor(browser, server["base"], seeded_document())

    def save_api() -> dict:
        with page.expect_download() as download:
            page.click("#save-api-btn")
        return json.loads(Path(download.value.path()).read_text())

    page.locator('.node[data-node-id="10"] .node-header').click()
    page.keyboard.press("Control+b")
    saved = save_api()
    assert "10" not in saved and saved["6"]["inputs"]["seed"] == ["9", 0]  # passed through by type
    assert saved == document_to_prompt(document(page), WEB_STUB_NODES)
    page.locator('.node[data-node-id="9"] .node-header').click()
    page.keyboard.press("Control+m")
    saved = save_api()
    assert "9" not in saved and "seed" not in saved["6"]["inputs"]
    assert saved["6"]["_meta"]["left_out"] == {"seed": "node 9 is muted"}
    assert saved == document_to_prompt(document(page), WEB_STUB_NODES)
    assert page.errors == []
