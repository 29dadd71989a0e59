"""Browser tests of issue 13 §2 right-click menus (web/editor/menu.js, context_menu.js): each action's
effect on the graph document, one undo step each, and the menu's own behaviour (Escape, outside click,
viewport)."""
from __future__ import annotations

import pytest

from tests.web_helpers import VIEWPORT, browser, document, drag, open_editor, server  # noqa: F401
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser


def node_menu(page, node_id: str, additive: bool = False):
    """Right-click node `node_id`'s title bar (Ctrl-click it first to add it to the selection)."""
    head = page.locator(f'.node[data-node-id="{node_id}"] .node-header')
    if additive:
        head.click(modifiers=["Control"])
    head.click(button="right")
    page.wait_for_selector(".context-menu")


def choose(page, *labels: str) -> None:
    """Hover down the submenus named by `labels` and click the last one."""
    for i, label in enumerate(labels):
        item = page.locator(f'.context-menu[data-level="{i}"] .menu-item[data-label="{label}"]')
        if i < len(labels) - 1:
            item.hover()
        else:
            item.click()


def undo_depth(page) -> int:
    return page.evaluate("() => cascade.editor.history.index")


def test_canvas_menu_adds_a_node_by_category_where_it_opened_and_closes_cleanly(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    before = undo_depth(page)
    page.mouse.click(700, 600, button="right")
    menu = page.locator('.context-menu[data-level="0"]')
    assert [menu.locator(".menu-item").nth(i).get_attribute("data-label") for i in range(6)] == \
        ["Add node", "Paste", "Add note", "Add group", "Fit view", "Arrange"]
    at = page.evaluate("() => cascade.editor.view.toGraph(700, 600)")
    label = page.evaluate("() => cascade.editor.graph.defs.StageCSampler.displayName")
    choose(page, "Add node", "sampling", label)
    assert page.locator(".context-menu").count() == 0
    doc = document(page)
    new = doc["nodes"]["9"]
    assert new["class_type"] == "StageCSampler"
    assert new["ui"]["pos"] == [round(at[0]), round(at[1])]
    assert undo_depth(page) == before + 1
    page.keyboard.press("Control+z")
    assert "9" not in document(page)["nodes"]
    # Escape closes; so does a click outside (which changes nothing else).
    page.mouse.click(700, 600, button="right")
    page.keyboard.press("Escape")
    assert page.locator(".context-menu").count() == 0
    page.mouse.click(700, 600, button="right")
    page.mouse.click(100, 700)
    assert page.locator(".context-menu").count() == 0
    # Opened in the bottom-right corner, the menu and its submenu stay inside the viewport.
    canvas = page.locator("#canvas").bounding_box()
    page.mouse.click(canvas["x"] + canvas["width"] - 3, canvas["y"] + canvas["height"] - 3, button="right")
    page.locator('.context-menu .menu-item[data-label="Add node"]').hover()
    for box in page.locator(".context-menu").all():
        b = box.bounding_box()
        assert b["x"] >= 0 and b["y"] >= 0
        assert b["x"] + b["width"] <= VIEWPORT["width"] and b["y"] + b["height"] <= VIEWPORT["height"]
    page.keyboard.press("Escape")
    assert page.errors == []


def test_node_menu_colour_pin_collapse_bypass_act_on_the_selection_one_undo_step_each(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    page.locator('.node[data-node-id="4"] .node-header').click()
    node_menu(page, "5", additive=True)
    before = undo_depth(page)
    choose(page, "Colour", "green")
    doc = document(page)
    for i in ("4", "5"):
        assert (doc["nodes"][i]["ui"]["color"], doc["nodes"][i]["ui"]["bgcolor"]) == ("#232", "#353")
    assert "color" not in doc["nodes"]["6"]["ui"]
    assert page.locator('.node[data-node-id="5"]').evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(51, 85, 51)"
    assert undo_depth(page) == before + 1
    node_menu(page, "4")
    choose(page, "Bypass")
    doc = document(page)
    assert doc["nodes"]["4"]["ui"]["mode"] == doc["nodes"]["5"]["ui"]["mode"] == "bypass"
    node_menu(page, "4")
    choose(page, "Collapse")
    assert document(page)["nodes"]["5"]["ui"]["collapsed"] is True
    assert page.locator('.node[data-node-id="4"] .widgets').is_hidden()
    page.keyboard.press("Control+z")
    assert "collapsed" not in document(page)["nodes"]["5"]["ui"]
    assert document(page)["nodes"]["5"]["ui"]["mode"] == "bypass"
    # Pin: a pinned node does not move when dragged, and cannot be resized.
    node_menu(page, "6")
    choose(page, "Pin")
    assert document(page)["nodes"]["6"]["ui"]["pinned"] is True
    head = page.locator('.node[data-node-id="6"] .node-header').bounding_box()
    drag(page, (head["x"] + 40, head["y"] + 8), (head["x"] + 240, head["y"] + 208))
    corner = page.locator('.node[data-node-id="6"] .resize-handle').bounding_box()
    drag(page, (corner["x"] + 5, corner["y"] + 5), (corner["x"] + 120, corner["y"] + 90))
    n6 = document(page)["nodes"]["6"]["ui"]
    assert n6["pos"] == [640, 20] and "size" not in n6
    assert page.errors == []


def test_node_menu_title_clone_remove_and_widget_as_input(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    node_menu(page, "6")
    choose(page, "Title…")
    page.keyboard.press("Control+a")
    page.keyboard.type("Main sampler")
    page.keyboard.press("Enter")
    assert document(page)["nodes"]["6"]["ui"]["title"] == "Main sampler"
    # Widget → input: the seed shows as a plain socket (its value kept), a link can drive it, and back.
    node_menu(page, "6")
    choose(page, "Widget ↔ input", "seed: show as input only")
    doc = document(page)
    assert doc["nodes"]["6"]["ui"]["as_input"] == ["seed"] and doc["nodes"]["6"]["inputs"]["seed"] == 5
    node = page.locator('.node[data-node-id="6"]')
    assert node.locator('.inputs .socket-row[data-input="seed"]').count() == 1
    assert node.locator('.widgets [data-input="seed"]').count() == 0
    node_menu(page, "6")
    choose(page, "Widget ↔ input", "seed: show as widget")
    assert "as_input" not in document(page)["nodes"]["6"]["ui"]
    assert node.locator('.widgets .widget-row[data-input="seed"]').count() == 1
    # Clone: a copy beside it, same class and values, no links from outside; undo removes it.
    node_menu(page, "6")
    choose(page, "Clone")
    doc = document(page)
    clone = doc["nodes"]["9"]
    assert clone["class_type"] == "StageCSampler" and clone["inputs"]["steps"] == doc["nodes"]["6"]["inputs"]["steps"]
    assert clone["ui"]["pos"] == [670, 50] and "positive" not in clone["inputs"]
    page.keyboard.press("Control+z")
    assert "9" not in document(page)["nodes"]
    # Remove on a two-node selection removes both, in one undo step.
    page.locator('.node[data-node-id="7"] .node-header').click()
    node_menu(page, "8", additive=True)
    choose(page, "Remove 2 nodes")
    assert {"7", "8"}.isdisjoint(document(page)["nodes"])
    page.keyboard.press("Control+z")
    assert {"7", "8"} <= set(document(page)["nodes"])
    assert page.errors == []


def test_arrange_lays_the_graph_out_in_layers_along_its_links(server, browser):
    doc = pipeline_document()
    # Scramble the layout: every node on one spot.
    for i, n in enumerate(doc["nodes"].values()):
        n["ui"]["pos"] = [100 + 3 * i, 100 + 2 * i]
    page = open_editor(browser, server["base"], doc)
    page.mouse.click(900, 450, button="right")  # clear of the minimap (bottom right)
    choose(page, "Arrange")
    pos = {i: n["ui"]["pos"] for i, n in document(page)["nodes"].items()}
    # Columns by depth: loaders, encoders, sampler, decode, save (the decode's depth is the sampler's + 1).
    assert pos["1"][0] == pos["2"][0] == pos["3"][0] < pos["4"][0] == pos["5"][0] < pos["6"][0] < pos["7"][0] < pos["8"][0]
    assert min(p[0] for p in pos.values()) == 100 and min(p[1] for p in pos.values()) == 100
    # No two nodes of a column overlap.
    boxes = page.evaluate("""() => [...cascade.editor.view.nodeEls].map(([id, e]) => [id, e.offsetLeft, e.offsetTop, e.offsetWidth, e.offsetHeight])""")
    for a in boxes:
        for b in boxes:
            if a[0] < b[0]:
                assert a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1] or a[2] + a[4] <= b[2] or b[2] + b[4] <= a[2], (a, b)
    page.keyboard.press("Control+z")
    assert document(page)["nodes"]["8"]["ui"]["pos"] == [121, 114]
    assert page.errors == []


def test_canvas_menu_adds_a_group_where_it_opened_or_around_the_selection(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    before = undo_depth(page)
    at = page.evaluate("() => cascade.editor.view.toGraph(700, 600)")
    page.mouse.click(700, 600, button="right")
    choose(page, "Add group")
    groups = document(page)["ui"]["groups"]
    assert len(groups) == 1 and groups[0]["title"] == "Group"
    assert groups[0]["bounding"][:2] == [round(at[0]), round(at[1])]
    assert undo_depth(page) == before + 1
    page.keyboard.press("Control+z")
    assert not document(page)["ui"].get("groups")
    # With nodes selected the same entry wraps them.
    page.evaluate("() => cascade.editor.select(['1', '2'])")
    page.mouse.click(700, 600, button="right")
    choose(page, "Group selection")
    x, y, w, h = document(page)["ui"]["groups"][0]["bounding"]
    for nid in ("1", "2"):
        nx, ny = document(page)["nodes"][nid]["ui"]["pos"]
        assert x < nx < x + w and y < ny < y + h
