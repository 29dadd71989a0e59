"""Browser tests of the graph editor against the real server (stub nodes, headless Chromium)."""
from __future__ import annotations

import copy
import json
import time

import pytest

from tests.server_harness import http
from tests.web_helpers import (browser, document, drag, drop_file, empty_spot, in_socket,  # noqa: F401
                               open_editor, out_socket, server, socket_center, strip_view)
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser


def test_palette_comes_from_object_info_and_double_click_search_adds_a_node(server, browser):
    page = open_editor(browser, server["base"], {"version": 1, "nodes": {}, "ui": {"notes": []}})
    page.mouse.dblclick(*empty_spot(page))
    search = page.locator(".search-popup input")
    search.wait_for()
    names = page.locator(".search-popup li").evaluate_all("els => els.map(e => e.dataset.type).sort()")
    assert names == sorted(["LoadStageC", "LoadTextEncoder", "LoadStageA", "TextEncode", "StageCSampler",
                            "StageADecode", "SaveImage", "SeedValue", "LoadImage", "Explode"])
    search.fill("stgc smp")  # fuzzy: letters in order
    assert page.locator(".search-popup li").first.get_attribute("data-type") == "StageCSampler"
    search.press("Enter")
    node = page.locator('.node[data-type="StageCSampler"]')
    node.wait_for()
    assert node.count() == 1
    # Sockets and widgets are built from the schema: a seed with its after-queue mode, a combo, numbers.
    assert node.locator(".socket.in").count() == 3 + 5
    assert node.locator('.widget-row[data-input="sampler"] select option').all_inner_texts() == ["ddpm", "euler"]
    assert node.locator('.widget-row[data-input="seed"] .seed-control').count() == 1
    doc = document(page)
    assert [n["class_type"] for n in doc["nodes"].values()] == ["StageCSampler"]
    assert doc["nodes"]["1"]["inputs"]["steps"] == 4
    assert page.errors == []


def test_first_visit_opens_the_default_workflow_framed(server, browser):
    from tests.web_helpers import ROOT
    default = json.loads((ROOT / "web" / "workflows" / "default.json").read_text())
    page = open_editor(browser, server["base"])
    page.wait_for_selector(".node")
    doc = document(page)
    assert sorted(doc["nodes"]) == sorted(default["nodes"])
    assert doc["ui"]["notes"] == default["ui"]["notes"]
    # Classes the server does not offer are kept (and marked), never dropped or invented.
    known = set(page.evaluate("() => Object.keys(cascade.editor.graph.defs)"))
    missing = sorted(i for i, n in default["nodes"].items() if n["class_type"] not in known)
    shown = sorted(page.locator(".node.missing").evaluate_all("els => els.map(e => e.dataset.nodeId)"))
    assert shown == missing
    # The first view fits the whole graph (tests/test_web_first_view.py); "Fit" keeps it in view.
    canvas = page.locator("#canvas").bounding_box()
    page.locator("#fit-btn").click()
    for box in page.locator(".node").evaluate_all("els => els.map(e => e.getBoundingClientRect().toJSON())"):
        assert canvas["x"] <= box["x"] and box["x"] + box["width"] <= canvas["x"] + canvas["width"] + 1
        assert canvas["y"] <= box["y"] and box["y"] + box["height"] <= canvas["y"] + canvas["height"] + 1
    # The side panels can be hidden for more room, and that choice sticks.
    page.locator("#panels-btn").click()
    assert not page.locator(".sidebar").is_visible()
    assert page.locator("#canvas").bounding_box()["width"] > canvas["width"]


def test_connect_by_dragging_and_refuse_incompatible_link(server, browser):
    doc = pipeline_document()
    del doc["nodes"]["6"]["inputs"]["positive"]
    page = open_editor(browser, server["base"], doc)
    links_before = page.locator("svg.links path.link").count()
    # Incompatible: STAGE_A output onto a CONDITIONING input is refused, with feedback.
    drag(page, socket_center(page, out_socket("3")), socket_center(page, in_socket("6", "positive")))
    assert "positive" not in document(page)["nodes"]["6"]["inputs"]
    page.locator(".toast.error", has_text="Cannot connect STAGE_A to CONDITIONING").wait_for()
    assert page.locator("svg.links path.link").count() == links_before
    # While dragging, incompatible sockets are marked and compatible ones highlighted.
    page.mouse.move(*socket_center(page, out_socket("4")))
    page.mouse.down()
    page.mouse.move(*socket_center(page, in_socket("6", "positive")), steps=6)
    assert page.locator(in_socket("6", "positive") + ".compatible").count() == 1
    assert page.locator(in_socket("6", "stage_c") + ".incompatible").count() == 1
    page.mouse.up()
    assert document(page)["nodes"]["6"]["inputs"]["positive"] == ["4", 0]
    assert page.locator('svg.links path.link[data-link="4:0->6.positive"]').count() == 1
    assert page.locator(".canvas.linking").count() == 0
    # A plain click on a linked input neither drops the link nor complains.
    page.mouse.click(*socket_center(page, in_socket("6", "positive")))
    assert document(page)["nodes"]["6"]["inputs"]["positive"] == ["4", 0]
    assert page.locator(".toast.error").count() == 1  # only the refusal above


def test_link_dropped_on_empty_canvas_offers_compatible_nodes_and_connects(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    drag(page, socket_center(page, out_socket("7")), empty_spot(page))
    page.locator(".search-popup").wait_for()
    offered = page.locator(".search-popup li").evaluate_all("els => els.map(e => e.dataset.type)")
    assert sorted(offered) == ["Explode", "SaveImage"]  # the only classes taking an IMAGE
    page.locator(".search-popup input").fill("save")
    page.locator(".search-popup input").press("Enter")
    doc = document(page)
    new = [i for i, n in doc["nodes"].items() if n["class_type"] == "SaveImage" and i != "8"]
    assert len(new) == 1 and doc["nodes"][new[0]]["inputs"]["images"] == ["7", 0]


def test_edit_widget_then_undo_and_redo(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    steps = page.locator('.node[data-node-id="6"] .widget-row[data-input="steps"] input')
    steps.fill("9")
    steps.press("Tab")
    assert document(page)["nodes"]["6"]["inputs"]["steps"] == 9
    steps.fill("999")  # above max: clamped to the schema's max
    steps.press("Tab")
    assert document(page)["nodes"]["6"]["inputs"]["steps"] == 200
    page.mouse.click(*empty_spot(page))
    page.keyboard.press("Control+z")
    assert document(page)["nodes"]["6"]["inputs"]["steps"] == 9
    page.keyboard.press("Control+z")
    assert document(page)["nodes"]["6"]["inputs"]["steps"] == 4
    assert steps.input_value() == "4"
    page.keyboard.press("Control+Shift+z")
    assert document(page)["nodes"]["6"]["inputs"]["steps"] == 9


def test_linked_widget_is_shown_as_driven(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    row = page.locator('.node[data-node-id="6"] .widget-row[data-input="seed"]')
    # A widget input also has a socket; a CONDITIONING link into the INT seed is refused...
    drag(page, socket_center(page, out_socket("4")), socket_center(page, in_socket("6", "seed")))
    assert document(page)["nodes"]["6"]["inputs"]["seed"] == 5
    # ...an INT source is accepted, and the widget shows it is driven by the link.
    page.evaluate("() => cascade.editor.addNode('SeedValue', [640, 500])")
    page.evaluate("() => cascade.editor.fitView()")
    drag(page, socket_center(page, out_socket("9")), socket_center(page, in_socket("6", "seed")))
    assert document(page)["nodes"]["6"]["inputs"]["seed"] == ["9", 0]
    assert "driven" in row.get_attribute("class")
    assert row.locator("input").count() == 0 and "Seed Value" in row.locator(".driven-by").inner_text()
    # Picking the link up off the input and dropping it on a node body elsewhere removes it; the
    # widget comes back with its literal value.
    drag(page, socket_center(page, in_socket("6", "seed")), socket_center(page, '.node[data-node-id="1"] .node-title'))
    assert document(page)["nodes"]["6"]["inputs"]["seed"] == 5
    assert row.locator("input").input_value() == "5"


def test_save_and_reopen_json(server, browser, tmp_path):
    page = open_editor(browser, server["base"], pipeline_document())
    page.locator('.node[data-node-id="4"] textarea').fill("a red fox")
    page.locator('.node[data-node-id="4"] textarea').press("Tab")
    with page.expect_download() as info:
        page.keyboard.press("Control+s")
    path = tmp_path / "saved.json"
    info.value.save_as(path)
    saved = json.loads(path.read_text())
    assert saved == document(page)
    assert saved["nodes"]["4"]["inputs"]["text"] == "a red fox"
    page.mouse.click(*socket_center(page, '.node[data-node-id="8"] .node-title'))
    page.keyboard.press("Delete")
    assert "8" not in document(page)["nodes"]
    page.locator("#open-file").set_input_files(str(path))
    page.wait_for_function("() => cascade.editor.document().nodes['8'] !== undefined")
    assert strip_view(document(page)) == strip_view(saved)


def test_queue_shows_progress_preview_and_result_then_png_drop_restores_graph(server, browser):
    doc = pipeline_document(delay=0.4, steps=8)
    page = open_editor(browser, server["base"], doc)
    sent = document(page)
    page.keyboard.press("Control+Enter")
    sampler = page.locator('.node[data-node-id="6"]')
    page.wait_for_selector('.node[data-node-id="6"].running', timeout=10000)
    page.wait_for_selector('.node[data-node-id="6"] .node-images img.preview', timeout=10000)
    page.wait_for_function("() => parseFloat(document.querySelector('.node[data-node-id=\"6\"] .node-progress .bar').style.width) > 0")
    page.locator(".queue-list li.job.running").wait_for()
    page.locator(".queue-list li.running .job-worker", has_text="on local").wait_for()  # who runs it
    page.wait_for_function("() => /node #6 \\d+\\/8/.test(document.querySelector('.queue-list li.running .job-progress')?.textContent || '')")
    result = page.locator('.node[data-node-id="8"] .node-images img.result')
    result.wait_for(timeout=15000)
    page.wait_for_function("() => document.querySelector('.node[data-node-id=\"8\"] img.result').naturalWidth === 64")
    assert page.locator(".gallery-grid .thumb img").count() >= 1
    page.wait_for_selector(".node.running", state="detached")
    assert "has-progress" not in (sampler.get_attribute("class") or "")
    # The saved PNG carries the document: dropping it restores the same graph.
    src = result.get_attribute("src")
    status, _, png = http("GET", server["base"] + src)
    assert status == 200 and png[:4] == b"\x89PNG"
    page.evaluate("() => cascade.editor.load({version: 1, nodes: {}, ui: {notes: []}})")
    assert page.locator(".node").count() == 0
    drop_file(page, "result.png", png, "image/png")
    page.wait_for_function("() => Object.keys(cascade.editor.document().nodes).length === 8")
    assert strip_view(document(page))["nodes"] == strip_view(sent)["nodes"]
    # The history panel lists the finished job; "Load" reopens the workflow it ran.
    done = page.locator(".history-list li.job.done")
    done.first.wait_for()
    assert "1 image" in done.first.inner_text()
    page.evaluate("() => cascade.editor.load({version: 1, nodes: {}, ui: {notes: []}})")
    done.first.locator("button", has_text="Load").click()
    page.wait_for_function("() => Object.keys(cascade.editor.document().nodes).length === 8")
    assert strip_view(document(page))["nodes"] == strip_view(sent)["nodes"]
    # The gallery's "Load its workflow" does the same from a thumbnail.
    page.evaluate("() => cascade.editor.load({version: 1, nodes: {}, ui: {notes: []}})")
    page.locator(".gallery-grid .thumb").first.click()
    page.locator(".lightbox button", has_text="Load its workflow").click()
    page.wait_for_function("() => Object.keys(cascade.editor.document().nodes).length === 8")
    assert strip_view(document(page))["nodes"] == strip_view(sent)["nodes"]


def test_png_with_only_a_prompt_chunk_is_rebuilt_with_layout(server, browser):
    import io
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    api = {i: {"class_type": n["class_type"], "inputs": n["inputs"]} for i, n in pipeline_document()["nodes"].items()}
    info = PngInfo()
    info.add_text("prompt", json.dumps(api))
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    page = open_editor(browser, server["base"], {"version": 1, "nodes": {}, "ui": {"notes": []}})
    drop_file(page, "api.png", buf.getvalue(), "image/png")
    page.wait_for_function("() => Object.keys(cascade.editor.document().nodes).length === 8")
    doc = document(page)
    assert {i: {"class_type": n["class_type"], "inputs": n["inputs"]} for i, n in doc["nodes"].items()} == api
    xs = {i: n["ui"]["pos"][0] for i, n in doc["nodes"].items()}
    assert xs["1"] < xs["4"] < xs["6"] < xs["7"] < xs["8"]  # laid out left to right along the links
    assert page.locator("svg.links path.link").count() == 8
    # Dropping the same prompt as an API-format JSON file does the same.
    page.evaluate("() => cascade.editor.load({version: 1, nodes: {}, ui: {notes: []}})")
    drop_file(page, "api.json", json.dumps(api).encode(), "application/json")
    page.wait_for_function("() => Object.keys(cascade.editor.document().nodes).length === 8")
    out = page.evaluate("() => cascade.editor.graph.toApiPrompt()")
    assert {i: {"class_type": e["class_type"], "inputs": e["inputs"]} for i, e in out.items()} == api
    titles = page.evaluate("() => Object.fromEntries([...cascade.editor.graph.nodes.values()].map(n => [n.id, cascade.editor.graph.defs[n.type].displayName]))")
    assert {i: e["_meta"] for i, e in out.items()} == {i: {"title": t} for i, t in titles.items()}
    # A JSON that is no workflow is refused with a message, leaving the graph alone.
    drop_file(page, "other.json", b'{"hello": 1}', "application/json")
    page.locator(".toast.error", has_text="not a workflow").wait_for()
    assert len(document(page)["nodes"]) == 8


def test_plain_image_drop_uploads_it_and_adds_a_loader(server, browser):
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    page = open_editor(browser, server["base"], pipeline_document())
    drop_file(page, "photo.png", buf.getvalue(), "image/png")
    node = page.locator('.node[data-type="LoadImage"]')
    node.wait_for()
    assert node.locator("select").input_value() == "photo.png"
    assert (server["input"] / "photo.png").read_bytes() == buf.getvalue()
    doc = document(page)
    assert [n["inputs"] for n in doc["nodes"].values() if n["class_type"] == "LoadImage"] == [{"image": "photo.png"}]
    page.locator(".toast.ok", has_text="Uploaded photo.png").wait_for()
    # The upload button picks a file for an existing loader the same way.
    with page.expect_file_chooser() as chooser:
        node.locator("button.upload").click()
    path = server["input"].parent / "other.png"
    Image.new("RGB", (8, 8), (0, 0, 255)).save(path)
    chooser.value.set_files(str(path))
    page.wait_for_function("() => Object.values(cascade.editor.document().nodes).some(n => n.inputs.image === 'other.png')")
    assert page.errors == []


def test_validation_error_is_highlighted_on_node_and_input(server, browser):
    doc = pipeline_document()
    doc["nodes"]["2"]["inputs"]["file"] = "missing.safetensors"
    page = open_editor(browser, server["base"], doc)
    assert "(missing)" in page.locator('.node[data-node-id="2"] select').inner_text()
    assert "missing-value" in page.locator('.node[data-node-id="2"] select').get_attribute("class")
    page.locator("#queue-btn").click()
    page.wait_for_selector('.node[data-node-id="2"].error')
    row = page.locator('.node[data-node-id="2"] .widget-row[data-input="file"]')
    assert "error" in row.get_attribute("class")
    assert "missing.safetensors" in page.locator('.node[data-node-id="2"] .node-error-text').inner_text()
    assert page.locator(".node.error").count() == 1
    page.locator(".toast.error", has_text="Cannot queue").wait_for()
    assert page.locator(".queue-list li.job").count() == 0


def test_run_time_error_is_shown_on_the_failing_node(server, browser):
    doc = pipeline_document(delay=0.0, steps=1)
    doc["nodes"]["8"] = {"class_type": "Explode", "inputs": {"images": ["7", 0], "message": "disk on fire"},
                         "ui": {"pos": [1220, 20]}}
    page = open_editor(browser, server["base"], doc)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector('.node[data-node-id="8"].error')
    assert "disk on fire" in page.locator('.node[data-node-id="8"] .node-error-text').inner_text()
    page.locator(".toast.error", has_text="Error in node #8").wait_for()
    page.locator(".history-list li.job.failed").first.wait_for()
    assert page.locator(".node.running").count() == 0 and page.locator(".node.error").count() == 1


def test_cancel_pending_and_interrupt_running(server, browser):
    doc = pipeline_document(delay=0.5, steps=40)
    page = open_editor(browser, server["base"], doc)
    page.locator("#queue-btn").click()
    page.wait_for_selector('.node[data-node-id="6"].running', timeout=10000)
    page.locator("#queue-btn").click()
    pending = page.locator(".queue-list li.job.pending")
    pending.wait_for()
    pending.locator("button", has_text="Cancel").click()
    pending.wait_for(state="detached")
    running = page.locator(".queue-list li.job.running")
    running.wait_for()
    started = time.monotonic()
    page.mouse.click(*empty_spot(page))
    page.keyboard.press("Control+Alt+Enter")
    page.locator(".toast", has_text="interrupted").wait_for(timeout=10000)
    page.wait_for_selector(".node.running", state="detached")
    assert time.monotonic() - started < 10
    page.locator(".queue-list li.job").first.wait_for(state="detached")
    assert page.locator(".queue-list li.job").count() == 0
    assert page.locator('.node[data-node-id="8"] img.result').count() == 0
    page.locator(".history-list li.job.interrupted").first.wait_for()


def test_copy_paste_notes_rename_and_autosave_reload(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    # Rename a node title in place.
    page.locator('.node[data-node-id="6"] .node-title').dblclick()
    page.locator(".title-edit").fill("Prior")
    page.locator(".title-edit").press("Enter")
    assert document(page)["nodes"]["6"]["ui"]["title"] == "Prior"
    # Notes live in ui.notes only.
    page.locator("#note-btn").click()
    page.locator(".note textarea").fill("remember the seed")
    page.locator(".note textarea").press("Tab")
    doc = document(page)
    assert doc["ui"]["notes"][0]["text"] == "remember the seed"
    api = page.evaluate("() => cascade.editor.graph.toApiPrompt()")
    assert "remember" not in json.dumps(api)
    # Resize the note from its corner handle (graph units = screen pixels / zoom).
    scale = page.evaluate("() => cascade.editor.graph.view.scale")
    drag(page, socket_center(page, ".note .resize-handle"), tuple(v + d for v, d in zip(socket_center(page, ".note .resize-handle"), (100, 50))))
    size = document(page)["ui"]["notes"][0]["size"]
    assert abs(size[0] - (260 + 100 / scale)) < 3 and abs(size[1] - (120 + 50 / scale)) < 3
    # Box-select the two prompt nodes (shift-drag), copy, paste: linked pair duplicated with fresh ids.
    a = page.locator('.node[data-node-id="4"]').bounding_box()
    b = page.locator('.node[data-node-id="5"]').bounding_box()
    page.keyboard.down("Shift")
    drag(page, (a["x"] - 10, a["y"] - 10), (b["x"] + b["width"] + 10, b["y"] + b["height"] + 10))
    page.keyboard.up("Shift")
    assert page.locator(".node.selected").count() == 2
    page.keyboard.press("Control+c")
    page.mouse.move(*empty_spot(page))
    page.keyboard.press("Control+v")
    page.wait_for_function("() => Object.keys(cascade.editor.document().nodes).length === 10")
    doc = document(page)
    assert sorted(n["class_type"] for i, n in doc["nodes"].items() if int(i) > 8) == ["TextEncode", "TextEncode"]
    pasted = [i for i in doc["nodes"] if int(i) > 8]
    assert all("text_encoder" not in doc["nodes"][i]["inputs"] for i in pasted)  # links from outside are dropped
    # Cut removes the selection; undo brings it back.
    page.mouse.click(*socket_center(page, '.node[data-node-id="3"] .node-title'))
    page.keyboard.press("Control+x")
    assert "3" not in document(page)["nodes"]
    page.keyboard.press("Control+z")
    assert "3" in document(page)["nodes"]
    doc = document(page)
    # Reload: the autosaved workflow comes back.
    page.wait_for_timeout(400)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert strip_view(document(page)) == strip_view(doc)
    # Another tab of the same browser can paste what this one cut last (one Load Stage A).
    other = page.context.new_page()
    other.goto(page.url)
    other.wait_for_selector("body[data-ready='1']")
    before = len(document(other)["nodes"])
    other.mouse.move(*empty_spot(other))
    other.keyboard.press("Control+v")
    other.wait_for_function(f"() => Object.keys(cascade.editor.document().nodes).length === {before + 1}")
    assert document(other)["nodes"][str(before + 1)]["class_type"] == "LoadStageA"


def test_links_stay_on_sockets_when_zoomed_and_on_hidpi(server, browser):
    page = open_editor(browser, server["base"], pipeline_document(), device_scale_factor=1.5)
    page.mouse.move(700, 400)
    for _ in range(4):
        page.mouse.wheel(0, 120)  # zoom out around the pointer
    scale = page.evaluate("() => cascade.editor.graph.view.scale")
    assert scale < 0.8
    # Background drag pans; space-drag pans even over a node (which then does not move).
    before = page.evaluate("() => cascade.editor.graph.view.offset")
    start = empty_spot(page)
    drag(page, start, (start[0] + 50, start[1] - 30))
    after = page.evaluate("() => cascade.editor.graph.view.offset")
    assert abs(after[0] - before[0] - 50) < 1 and abs(after[1] - before[1] + 30) < 1
    title = socket_center(page, '.node[data-node-id="6"] .node-title')
    page.keyboard.down(" ")
    drag(page, title, (title[0] + 40, title[1] + 40))
    page.keyboard.up(" ")
    assert document(page)["nodes"]["6"]["ui"]["pos"] == pipeline_document()["nodes"]["6"]["ui"]["pos"]
    assert abs(page.evaluate("() => cascade.editor.graph.view.offset")[0] - after[0] - 40) < 1
    ends = page.evaluate("""() => {
        const p = document.querySelector('path.link[data-link="4:0->6.positive"]');
        const n = p.getTotalLength();
        const m = p.getScreenCTM();
        const at = (t) => { const q = p.getPointAtLength(t).matrixTransform(m); return [q.x, q.y]; };
        return [at(0), at(n)];
    }""")
    for end, sel in zip(ends, [out_socket("4"), in_socket("6", "positive")]):
        cx, cy = socket_center(page, sel)
        assert abs(end[0] - cx) < 1.5 and abs(end[1] - cy) < 1.5, (end, (cx, cy))


def test_two_finger_pinch_zooms(server, browser):
    page = open_editor(browser, server["base"], pipeline_document(), has_touch=True)
    before = page.evaluate("() => cascade.editor.graph.view.scale")
    cdp = page.context.new_cdp_session(page)
    x, y = empty_spot(page)
    x += 100

    def fingers(d):
        return [{"x": x - d, "y": y, "id": 1}, {"x": x + d, "y": y, "id": 2}]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": fingers(40)})
    for d in range(45, 85, 5):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": fingers(d)})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    after = page.evaluate("() => cascade.editor.graph.view.scale")
    assert after == pytest.approx(before * 80 / 40, rel=0.1)  # fingers twice as far apart
    assert page.errors == []
