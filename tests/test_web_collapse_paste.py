"""Browser tests of issue 13 §2: collapse (Alt+C) to the title bar with links on its edges, and
Ctrl+Shift+V pastes keeping input links, repeated pastes stepping aside."""
from __future__ import annotations

import time

import pytest

from tests.server_harness import http_json
from tests.web_helpers import browser, document, empty_spot, open_editor, server  # noqa: F401
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser

# Each link's path start (output end) and end (input end) with the ids of its two nodes.
LINK_ENDS = """() => [...cascade.editor.view.links.byNode.get("4")].map(l => {
  const n = l.path.getAttribute("d").match(/-?[\\d.]+/g).map(Number);
  return {src: l.from.dataset.nodeId, dst: l.to.dataset.nodeId, start: n.slice(0, 2), end: n.slice(-2)};
})"""


def test_alt_c_collapses_to_the_title_bar_links_meet_its_edges_and_it_still_runs(server, browser):
    page = open_editor(browser, server["base"], pipeline_document(delay=0.0))
    node = page.locator('.node[data-node-id="4"]')
    node.locator(".node-header").click()
    tall = node.bounding_box()["height"]
    page.keyboard.press("Alt+c")
    assert document(page)["nodes"]["4"]["ui"]["collapsed"] is True
    assert "collapsed" in node.get_attribute("class")
    head = node.locator(".node-header").bounding_box()
    box = node.bounding_box()
    assert box["height"] < tall / 2 and abs(box["height"] - head["height"]) <= 3
    assert node.locator(".widgets").is_hidden() and node.locator(".node-io").is_hidden()
    left, top, width, header = page.evaluate("""() => { const e = cascade.editor.view.nodeEls.get("4");
        return [e.offsetLeft, e.offsetTop, e.offsetWidth, e.querySelector('.node-header').offsetHeight]; }""")
    ends = page.evaluate(LINK_ENDS)
    into = [l for l in ends if l["dst"] == "4"]
    out = [l for l in ends if l["src"] == "4"]
    assert into and out
    for l in into:  # its input links end on the title bar's left edge
        assert abs(l["end"][0] - left) <= 2 and top < l["end"][1] < top + header + 2
    for l in out:  # its output links start on the right edge
        assert abs(l["start"][0] - (left + width)) <= 2 and top < l["start"][1] < top + header + 2
    # A collapsed node still runs: the server gets it and uses its output.
    prompt_id = page.evaluate("() => cascade.runner.queue()")
    for _ in range(100):
        status, body = http_json("GET", f"{server['base']}/history/{prompt_id}")
        entry = body.get(prompt_id) if status == 200 else None
        if entry and entry.get("status", {}).get("completed") is not None:
            break
        time.sleep(0.1)
    assert entry["status"]["status_str"] == "success"
    assert entry["prompt"][2]["4"]["class_type"] == "TextEncode"
    # Alt+C again expands it; undo collapses it again.
    page.keyboard.press("Alt+c")
    assert "collapsed" not in document(page)["nodes"]["4"]["ui"]
    assert node.locator(".widgets").is_visible()
    page.keyboard.press("Control+z")
    assert document(page)["nodes"]["4"]["ui"]["collapsed"] is True
    assert page.errors == []


def test_ctrl_shift_v_keeps_input_links_and_repeated_pastes_step_aside(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    page.locator('.node[data-node-id="4"] .node-header').click()
    page.keyboard.press("Control+c")
    page.mouse.move(*empty_spot(page))
    page.keyboard.press("Control+Shift+v")
    page.wait_for_function("() => cascade.editor.graph.nodes.has('9')")
    doc = document(page)
    assert doc["nodes"]["9"]["class_type"] == "TextEncode"
    assert doc["nodes"]["9"]["inputs"]["text_encoder"] == ["1", 0]  # linked from outside the pasted set
    # Plain Ctrl+V at the same spot: no outside links, and it does not land on the previous paste.
    page.keyboard.press("Control+v")
    page.wait_for_function("() => cascade.editor.graph.nodes.has('10')")
    page.keyboard.press("Control+v")
    page.wait_for_function("() => cascade.editor.graph.nodes.has('11')")
    doc = document(page)
    assert "text_encoder" not in doc["nodes"]["10"]["inputs"]
    p9, p10, p11 = (doc["nodes"][i]["ui"]["pos"] for i in ("9", "10", "11"))
    assert [p10[0] - p9[0], p10[1] - p9[1]] == [30, 30] and [p11[0] - p10[0], p11[1] - p10[1]] == [30, 30]
    # After a pointer move the next paste lands at the pointer again.
    x, y = empty_spot(page)
    page.mouse.move(x + 5, y + 7)
    at = page.evaluate("() => cascade.editor.pointer")
    page.keyboard.press("Control+v")
    page.wait_for_function("() => cascade.editor.graph.nodes.has('12')")
    assert document(page)["nodes"]["12"]["ui"]["pos"] == [round(at[0]), round(at[1])]
    # Each paste is one undo step.
    page.keyboard.press("Control+z")
    assert "12" not in document(page)["nodes"] and "11" in document(page)["nodes"]
    assert page.errors == []
