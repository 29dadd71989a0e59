"""Browser tests: ComfyUI files in the editor (editor JSON, PNGs with both chunks, missing classes,
Save as ComfyUI API), against the real server with the web stub nodes in headless Chromium."""
from __future__ import annotations

import io
import json

import pytest

from tests.web_helpers import ROOT, browser, document, drop_file, open_editor, server  # noqa: F401

pytestmark = pytest.mark.browser

EMPTY = {"version": 1, "nodes": {}, "ui": {"notes": []}}
EDITOR_JSON = ROOT / "tests" / "data" / "stable_cascade__text_to_image.json"
PROMPT_JSON = ROOT / "tests" / "data" / "stable_cascade__text_to_image.prompt.json"


def comfy_file() -> dict:
    return json.loads(EDITOR_JSON.read_text())


def png_with(chunks: dict[str, str]) -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    for key, text in chunks.items():
        info.add_text(key, text)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def wait_nodes(page, count: int) -> None:
    page.wait_for_function(f"() => Object.keys(cascade.editor.document().nodes).length === {count}")


def executable(wf: dict) -> list[dict]:
    return [n for n in wf["nodes"] if n["type"] not in ("Note", "MarkdownNote")]


def test_editor_json_drop_keeps_layout_titles_groups_notes_and_missing_sockets(server, browser):
    wf = comfy_file()
    page = open_editor(browser, server["base"], EMPTY)
    drop_file(page, "stable_cascade.json", json.dumps(wf).encode(), "application/json")
    wait_nodes(page, len(executable(wf)))
    doc = document(page)
    for n in executable(wf):
        entry = doc["nodes"][str(n["id"])]
        assert entry["class_type"] == n["type"]
        assert entry["ui"]["pos"] == n["pos"], n["id"]  # the file's positions, not an automatic layout
        el = page.locator(f'.node[data-node-id="{n["id"]}"]')
        if n.get("title"):
            assert entry["ui"]["title"] == n["title"] and el.locator(".node-title").inner_text() == n["title"]
    assert [g["title"] for g in doc["ui"]["groups"]] == [g["title"] for g in wf["groups"]]
    assert page.locator(".group .group-title").all_inner_texts() == [g["title"] for g in wf["groups"]]
    box = page.locator(".group").first.bounding_box()
    scale = page.evaluate("() => cascade.editor.graph.view.scale")
    assert abs(box["width"] - wf["groups"][0]["bounding"][2] * scale) < 2
    notes = [n for n in wf["nodes"] if n["type"] == "Note"]
    assert sorted(m["text"] for m in doc["ui"]["notes"]) == sorted(n["widgets_values"][0] for n in notes)
    assert page.locator(".note").count() == len(notes)
    # ComfyUI's classes are not in the stub registry: drawn as marked missing-class nodes whose
    # sockets are the file's, with every link between them drawn.
    known = set(page.evaluate("() => Object.keys(cascade.editor.graph.defs)"))
    missing = [n for n in executable(wf) if n["type"] not in known]
    assert missing and page.locator(".node.missing").count() == len(missing)
    for n in missing:
        el = page.locator(f'.node[data-node-id="{n["id"]}"]')
        assert el.locator(".missing-badge").inner_text().lower() == "missing class"
        assert el.locator(".socket.in").evaluate_all("e => e.map(s => s.dataset.input)") == [i["name"] for i in n.get("inputs", [])]
        assert el.locator(".socket.out").count() == len(n.get("outputs", []))
        types = el.locator(".socket.out").evaluate_all("e => e.map(s => s.dataset.socketType)")
        assert types == [o["type"] for o in n.get("outputs", [])]
    ids = {str(n["id"]) for n in executable(wf)}
    expected = sorted(f"{lk[1]}:{lk[2]}->{lk[3]}.{next(i['name'] for i in node['inputs'] if i['link'] == lk[0])}"
                      for lk in wf["links"] for node in wf["nodes"]
                      if node["id"] == lk[3] and str(lk[1]) in ids)
    drawn = sorted(page.locator("svg.links path.link").evaluate_all("e => e.map(p => p.dataset.link)"))
    assert drawn == expected and len(drawn) == len(wf["links"])
    # The message names the missing classes.
    toast = page.locator(".toast.warn", has_text="missing node classes")
    toast.wait_for()
    for cls in ("KSampler", "CheckpointLoaderSimple", "StableCascade_StageB_Conditioning"):
        assert cls in toast.inner_text()
    # The document keeps the sockets and widget values (so saving and reopening loses nothing).
    assert doc["nodes"]["3"]["ui"]["comfy"]["widgets_values"][0] == next(n for n in wf["nodes"] if n["id"] == 3)["widgets_values"][0]
    page.evaluate("d => cascade.editor.load(d)", doc)
    assert page.locator("svg.links path.link").count() == len(wf["links"])
    assert page.errors == []


def test_queueing_a_missing_class_gives_the_servers_validation_error(server, browser):
    page = open_editor(browser, server["base"], EMPTY)
    page.locator("#open-file").set_input_files(str(EDITOR_JSON))
    wait_nodes(page, len(executable(comfy_file())))
    page.locator("#queue-btn").click()
    toast = page.locator(".toast.error", has_text="Cannot queue")
    toast.wait_for()
    assert "does not exist" in toast.inner_text(), toast.inner_text()
    page.screenshot(path="/tmp/comfy_editor.png")
    assert page.locator(".queue-list li.job").count() == 0


def test_png_prefers_its_workflow_chunk_then_falls_back_to_the_prompt(server, browser):
    wf = comfy_file()
    prompt = PROMPT_JSON.read_text()
    page = open_editor(browser, server["base"], EMPTY)
    drop_file(page, "both.png", png_with({"prompt": prompt, "workflow": json.dumps(wf)}), "image/png")
    wait_nodes(page, len(executable(wf)))
    doc = document(page)
    assert {i: n["ui"]["pos"] for i, n in doc["nodes"].items()} == {str(n["id"]): n["pos"] for n in executable(wf)}
    assert len(doc["ui"]["notes"]) == 3 and len(doc["ui"]["groups"]) == 2
    # A workflow chunk the server refuses: the prompt chunk is used, rebuilt with a layout.
    page.evaluate("() => cascade.editor.load({version: 1, nodes: {}, ui: {notes: []}})")
    bad = json.dumps({"nodes": [1], "links": []})
    drop_file(page, "bad.png", png_with({"prompt": prompt, "workflow": bad}), "image/png")
    wait_nodes(page, len(json.loads(prompt)))
    doc = document(page)
    assert sorted(doc["nodes"]) == sorted(json.loads(prompt)) and doc["ui"]["notes"] == []
    # Neither chunk usable: the picture is taken as a plain image, and the message says why.
    drop_file(page, "none.png", png_with({"workflow": bad}), "image/png")
    page.locator(".toast.warn", has_text="nodes[0] must be an object").wait_for()
    page.locator('.node[data-type="LoadImage"]').wait_for()


def test_save_as_comfyui_api_titles_every_node(server, browser, tmp_path):
    wf = comfy_file()
    page = open_editor(browser, server["base"], EMPTY)
    drop_file(page, "wf.json", json.dumps(wf).encode(), "application/json")
    wait_nodes(page, len(executable(wf)))
    with page.expect_download() as info:
        page.locator("#save-api-btn").click()
    path = tmp_path / "api.json"
    info.value.save_as(path)
    api = json.loads(path.read_text())
    assert info.value.suggested_filename == "workflow_api.json"
    assert api == page.evaluate("() => cascade.editor.graph.toApiPrompt()")
    defs = page.evaluate("() => Object.fromEntries(Object.values(cascade.editor.graph.defs).map(d => [d.name, d.displayName]))")
    for n in executable(wf):
        entry = api[str(n["id"])]
        assert set(entry) == {"class_type", "inputs", "_meta"}  # no ui, no layout
        assert entry["_meta"]["title"] == (n.get("title") or defs.get(n["type"]) or n["type"])
    assert api["6"]["_meta"]["title"] == "CLIP Text Encode (Positive Prompt)"
    assert api["3"]["_meta"]["title"] == "KSampler"
    assert api["3"]["inputs"]["model"] == ["41", 0]
