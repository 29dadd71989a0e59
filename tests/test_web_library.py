"""The node library panel (web/editor/library.js): a category tree from /object_info with fuzzy search;
a click adds the node at the view's centre, a drag adds it where dropped (one undo step each); it
follows ↻ Lists; toggled by its button or the N key, remembered across reloads."""
from __future__ import annotations

import json
import urllib.request

import pytest

from tests.web_helpers import browser, document, drag, open_editor, server  # noqa: F401

pytestmark = pytest.mark.browser

DEPTH = "() => cascade.editor.history.stack.length"


def object_info(base: str) -> dict:
    with urllib.request.urlopen(base + "/object_info") as r:
        return json.loads(r.read())


def new_nodes(before: dict, after: dict) -> dict:
    return {k: v for k, v in after["nodes"].items() if k not in before["nodes"]}


def test_library_toggles_by_button_and_key_and_remembers(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    panel = page.locator("#library-panel")
    assert panel.is_hidden()  # closed on a first visit
    canvas_w = page.locator("#canvas").bounding_box()["width"]
    page.locator("#library-btn").click()
    assert panel.is_visible()
    assert page.locator("#canvas").bounding_box()["width"] < canvas_w  # beside the canvas, not over it
    page.locator("#canvas").focus()
    page.keyboard.press("n")
    assert panel.is_hidden()
    page.keyboard.press("n")
    assert panel.is_visible()
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert panel.is_visible()  # remembered
    # Typing an "n" into a field is typing, not the shortcut.
    page.locator(".widget-row textarea").first.click()
    page.keyboard.type("n")
    assert panel.is_visible()
    assert page.errors == []  # type: ignore[attr-defined]


def test_library_tree_is_the_servers_categories_and_search_ranks_like_the_popup(server, browser):  # noqa: F811
    info = object_info(server["base"])
    page = open_editor(browser, server["base"])
    page.locator("#library-btn").click()
    cats = page.locator(".library-list > details.library-category").evaluate_all("els => els.map(e => e.dataset.category)")
    assert sorted(cats) == sorted({v["category"] for v in info.values()})
    # Closed at first; opening one lists exactly its classes.
    assert page.locator(".library-item").evaluate_all("els => els.filter(e => e.checkVisibility()).length") == 0
    page.locator('details[data-category="loaders"] > summary').click()
    shown = page.locator('details[data-category="loaders"] .library-item').evaluate_all("els => els.map(e => e.dataset.type)")
    assert sorted(shown) == sorted(k for k, v in info.items() if v["category"] == "loaders")
    # Search: a flat list in the double-click search's own order.
    page.locator(".library-search").fill("sampler")
    hits = page.locator(".library-item").evaluate_all("els => els.map(e => e.dataset.type)")
    assert hits and hits[0] == "StageCSampler"
    ranked = page.evaluate("""async q => { const { rank } = await import('/editor/search.js');
        return rank(Object.values(cascade.editor.graph.defs).map(def => ({def})), q).map(c => c.def.name); }""", "sampler")
    assert hits == ranked
    page.locator(".library-search").fill("zzzzqq")
    assert page.locator(".library-item").count() == 0 and page.locator(".library-empty").is_visible()
    # Clearing the search brings the tree back with the category the user opened still open.
    page.locator(".library-search").fill("")
    assert page.locator('details[data-category="loaders"]').evaluate("e => e.open")
    assert page.errors == []  # type: ignore[attr-defined]


def test_library_click_adds_at_centre_and_drag_adds_where_dropped(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.locator("#library-btn").click()
    page.locator(".library-search").fill("Save Image")
    before, depth = document(page), page.evaluate(DEPTH)
    page.locator('.library-item[data-type="SaveImage"]').click()
    added = new_nodes(before, document(page))
    assert [n["class_type"] for n in added.values()] == ["SaveImage"]
    assert page.evaluate(DEPTH) == depth + 1
    # The new node sits in the middle of the canvas (by the page's own layout).
    (nid,) = added
    box = page.locator(f'.node[data-node-id="{nid}"]').bounding_box()
    canvas = page.locator("#canvas").bounding_box()
    assert abs(box["x"] + 130 * page.evaluate("() => cascade.editor.graph.view.scale") - (canvas["x"] + canvas["width"] / 2)) < 2
    assert canvas["y"] < box["y"] < canvas["y"] + canvas["height"] / 2 + 2

    # Drag onto the canvas: added with its top-left corner at the drop point, one undo step.
    before, depth = document(page), page.evaluate(DEPTH)
    item = page.locator('.library-item[data-type="SaveImage"]').bounding_box()
    drop = (canvas["x"] + 120, canvas["y"] + canvas["height"] - 120)
    drag(page, (item["x"] + 20, item["y"] + item["height"] / 2), drop, steps=8)
    added = new_nodes(before, document(page))
    assert [n["class_type"] for n in added.values()] == ["SaveImage"]
    (nid,) = added
    want = page.evaluate("([x, y]) => cascade.editor.view.toGraph(x, y).map(Math.round)", list(drop))
    assert added[nid]["ui"]["pos"] == want
    assert page.evaluate(DEPTH) == depth + 1
    assert page.locator(".library-ghost").count() == 0
    page.keyboard.press("Control+z")
    assert nid not in document(page)["nodes"]

    # Dropped back on the panel (not the canvas): nothing is added.
    before = document(page)
    drag(page, (item["x"] + 20, item["y"] + item["height"] / 2), (item["x"] + 40, item["y"] + 80), steps=8)
    assert document(page)["nodes"] == before["nodes"]
    assert page.errors == []  # type: ignore[attr-defined]


def test_library_follows_the_lists_refresh(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.locator("#library-btn").click()
    # The server gains a class (as after installing a node pack): ↻ Lists brings it into the tree.
    page.evaluate("""() => { const api = cascade.api, real = api.objectInfo.bind(api);
        api.objectInfo = async () => { const info = await real();
            info.ExtraNode = {...info.SaveImage, name: 'ExtraNode', display_name: 'Extra Node', category: 'extra/deep'};
            return info; }; }""")
    page.locator("#refresh-btn").click()
    page.wait_for_selector('details[data-category="extra"]', state="attached")
    page.locator('details[data-category="extra"] > summary').click()
    page.locator('details[data-category="extra/deep"] > summary').click()
    before, depth = document(page), page.evaluate(DEPTH)
    page.locator('details[data-category="extra/deep"] .library-item[data-type="ExtraNode"]').click()
    assert [n["class_type"] for n in new_nodes(before, document(page)).values()] == ["ExtraNode"]
    assert page.evaluate(DEPTH) == depth + 1
    assert page.errors == []  # type: ignore[attr-defined]
