"""Browser tests of issue 13 §2: reroutes — added on a link, dragged, chained, branched, removed,
carried with a moved link, undone, and produced by ComfyUI imports."""
from __future__ import annotations

import pytest

from tests.comfy_editor_files import node as comfy_node, workflow as comfy_workflow
from tests.web_helpers import browser, document, drag, open_editor, server, socket_center  # noqa: F401
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser

# The client point at fraction `t` along the link into dst.input (graph point -> layer transform).
LINK_POINT = """([dst, input, t]) => {
  const p = document.querySelector(`path.link[data-dst="${dst}"][data-input="${input}"]`);
  const pt = p.getPointAtLength(p.getTotalLength() * t);
  const r = p.ownerSVGElement.getBoundingClientRect();
  const s = cascade.editor.graph.view.scale;
  return [r.left + pt.x * s, r.top + pt.y * s];
}"""


def link_point(page, dst: str, input_: str, t: float = 0.5) -> tuple[float, float]:
    x, y = page.evaluate(LINK_POINT, [dst, input_, t])
    return x, y


def dot(page, rid: str):
    return page.locator(f'.reroute[data-reroute-id="{rid}"]')


def segments(page, dst: str, input_: str) -> int:
    """How many curves the link's path has (one more than its points)."""
    return page.evaluate("([d, i]) => document.querySelector(`path.link[data-dst=\"${d}\"][data-input=\"${i}\"]`)"
                         ".getAttribute('d').split('C').length - 1", [dst, input_])


def spread_document() -> dict:
    """The stub pipeline with long links (the default layout's are a few pixels wide)."""
    doc = pipeline_document()
    doc["nodes"]["8"]["ui"]["pos"] = [1500, 400]
    doc["nodes"]["1"]["ui"]["pos"] = [20, 520]
    return doc


def test_double_click_adds_a_point_drag_moves_it_and_each_is_one_undo_step(server, browser):
    page = open_editor(browser, server["base"], spread_document())
    undo_before = page.evaluate("() => cascade.editor.history.index")
    page.mouse.dblclick(*link_point(page, "8", "images"))
    doc = document(page)
    rid = doc["nodes"]["8"]["ui"]["link_reroutes"]["images"]
    assert [r["id"] for r in doc["ui"]["reroutes"]] == [rid]
    assert doc["nodes"]["8"]["inputs"]["images"] == ["7", 0]  # the link itself is unchanged
    assert page.locator(".search-popup").count() == 0  # not the canvas's node search
    assert dot(page, rid).count() == 1 and segments(page, "8", "images") == 2
    assert page.evaluate("() => cascade.editor.history.index") == undo_before + 1
    # A second point on the part nearer the input chains after the first.
    page.mouse.dblclick(*link_point(page, "8", "images", 0.85))
    doc = document(page)
    second = doc["nodes"]["8"]["ui"]["link_reroutes"]["images"]
    assert second != rid and {r["id"]: r.get("parent") for r in doc["ui"]["reroutes"]} == {rid: None, second: rid}
    assert segments(page, "8", "images") == 3
    # Drag the first point 60 px down: one undo step restores it.
    start = socket_center(page, f'.reroute[data-reroute-id="{rid}"]')
    old = next(r["pos"] for r in doc["ui"]["reroutes"] if r["id"] == rid)
    drag(page, start, (start[0], start[1] + 60))
    moved = next(r["pos"] for r in document(page)["ui"]["reroutes"] if r["id"] == rid)
    scale = page.evaluate("() => cascade.editor.graph.view.scale")
    assert abs(moved[1] - old[1] - 60 / scale) <= 2 and abs(moved[0] - old[0]) <= 2
    page.keyboard.press("Control+z")
    assert next(r["pos"] for r in document(page)["ui"]["reroutes"] if r["id"] == rid) == old
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    doc = document(page)
    assert "reroutes" not in doc["ui"] and "link_reroutes" not in doc["nodes"]["8"]["ui"]
    assert page.locator(".reroute").count() == 0 and segments(page, "8", "images") == 1
    assert page.errors == []


def test_branch_from_a_point_remove_it_and_carry_points_with_a_moved_link(server, browser):
    page = open_editor(browser, server["base"], spread_document())
    # (at 0.8: lower down the link to node 5 runs alongside)
    page.mouse.dblclick(*link_point(page, "4", "text_encoder", 0.8))
    rid = document(page)["nodes"]["4"]["ui"]["link_reroutes"]["text_encoder"]
    # Shift+drag from the point to the negative encoder's input: a fan-out through the point.
    start = socket_center(page, f'.reroute[data-reroute-id="{rid}"]')
    page.keyboard.down("Shift")
    drag(page, start, socket_center(page, '.node[data-node-id="5"] .socket.in[data-input="text_encoder"]'))
    page.keyboard.up("Shift")
    doc = document(page)
    assert doc["nodes"]["5"]["inputs"]["text_encoder"] == ["1", 0]
    assert doc["nodes"]["5"]["ui"]["link_reroutes"] == {"text_encoder": rid}
    assert doc["nodes"]["4"]["ui"]["link_reroutes"] == {"text_encoder": rid}
    assert segments(page, "5", "text_encoder") == 2
    # Double-clicking the point removes it from both links; the links stay.
    page.mouse.dblclick(*start)
    doc = document(page)
    assert "reroutes" not in doc["ui"] and page.locator(".reroute").count() == 0
    assert doc["nodes"]["4"]["inputs"]["text_encoder"] == ["1", 0] == doc["nodes"]["5"]["inputs"]["text_encoder"]
    page.keyboard.press("Control+z")
    assert len(document(page)["ui"]["reroutes"]) == 1
    # Picking up the negative link at its input and dropping it on the positive input keeps its point.
    page.mouse.dblclick(*link_point(page, "6", "negative"))
    neg = document(page)["nodes"]["6"]["ui"]["link_reroutes"]["negative"]
    drag(page, socket_center(page, '.node[data-node-id="6"] .socket.in[data-input="negative"]'),
         socket_center(page, '.node[data-node-id="6"] .socket.in[data-input="positive"]'))
    doc = document(page)
    assert doc["nodes"]["6"]["inputs"]["positive"] == ["5", 0] and "negative" not in doc["nodes"]["6"]["inputs"]
    assert doc["nodes"]["6"]["ui"]["link_reroutes"] == {"positive": neg}
    assert page.errors == []


def test_a_comfyui_file_with_reroute_nodes_opens_with_points_on_its_links(server, browser):
    page = open_editor(browser, server["base"])
    wf = comfy_workflow([comfy_node(1, "LoadTextEncoder", ["enc_a.safetensors"], outputs=[("text_encoder", "TEXT_ENCODER")]),
                         comfy_node(2, "Reroute", None, [("", "*")], [("", "TEXT_ENCODER")], pos=[300, 100], size=[75, 26]),
                         comfy_node(3, "TextEncode", ["hi"], [("text_encoder", "TEXT_ENCODER")],
                                    [("conditioning", "CONDITIONING")], pos=[600, 40])],
                        [[1, 1, 0, 2, 0, "TEXT_ENCODER"], [2, 2, 0, 3, 0, "TEXT_ENCODER"]],
                        extra={"reroutes": [{"id": 5, "pos": [450, 300]}],
                               "linkExtensions": [{"id": 2, "parentId": 5}]})
    doc = page.evaluate("""async (wf) => {
      const r = await fetch('/workflow/convert', {method: 'POST', body: JSON.stringify({workflow: wf})});
      const body = await r.json();
      cascade.editor.load(body.document, true);
      return cascade.editor.document();
    }""", wf)
    assert doc["nodes"]["3"]["inputs"]["text_encoder"] == ["1", 0]
    assert doc["nodes"]["3"]["ui"]["link_reroutes"] == {"text_encoder": "r5"}
    assert {r["id"]: (r["pos"], r.get("parent")) for r in doc["ui"]["reroutes"]} == {
        "r5": ([450, 300], "rn2"), "rn2": ([337.5, 113], None)}
    assert page.locator(".reroute").count() == 2 and segments(page, "3", "text_encoder") == 3
    assert page.errors == []
