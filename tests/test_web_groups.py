"""Browser tests of issue 13 §2 groups: Ctrl+G around the selection, move with contents, resize,
nest, rename, colour, pin, select and delete; each edit one undo step (web/editor/groups.js)."""
from __future__ import annotations

import pytest

from tests.web_helpers import grouped_document as shared_grouped_document, browser, document, drag, open_editor, server  # noqa: F401
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser

OUTER = [0, 0, 420, 720]
INNER = [20, 50, 340, 240]


def grouped_document() -> dict:
    """Nodes 1 (in the inner group), 2 and a note (in the outer one only), the rest outside both."""
    return shared_grouped_document([{"title": "Outer", "bounding": list(OUTER)},
                                   {"title": "Inner", "bounding": list(INNER), "color": "#88a"}])


def open_at_scale_1(browser, base: str, doc: dict):
    """The editor with `doc`, viewed at scale 1 from the origin: client offsets equal graph units."""
    page = open_editor(browser, base, doc)
    page.evaluate("() => { const e = cascade.editor; e.graph.view = {offset: [0, 0], scale: 1};"
                  " e.view.applyTransform(); e.history.reset(e.snapshot()); }")
    return page


def title_point(page, index: int) -> tuple[float, float]:
    box = page.locator(f'.group[data-group-index="{index}"] .group-title').bounding_box()
    assert box is not None
    return box["x"] + 40, box["y"] + box["height"] / 2


def undo_index(page) -> int:
    return page.evaluate("() => cascade.editor.history.index")


def positions(doc: dict) -> dict:
    return {nid: n["ui"]["pos"] for nid, n in doc["nodes"].items()}


def test_ctrl_g_groups_the_selection_and_undo_removes_it(server, browser):
    page = open_at_scale_1(browser, server["base"], pipeline_document(delay=0.0))
    page.locator('.node[data-node-id="4"] .node-header').click()
    page.locator('.node[data-node-id="6"] .node-header').click(modifiers=["Shift"])
    page.keyboard.press("Control+g")
    groups = document(page)["ui"]["groups"]
    assert len(groups) == 1 and groups[0]["title"] == "Group"
    x, y, w, h = groups[0]["bounding"]
    for nid in ("4", "6"):
        box = page.locator(f'.node[data-node-id="{nid}"]').evaluate(
            "e => [e.offsetLeft, e.offsetTop, e.offsetLeft + e.offsetWidth, e.offsetTop + e.offsetHeight]")
        assert x < box[0] and y + 34 < box[1] and box[2] < x + w and box[3] < y + h, (nid, box, groups[0])
    assert "selected" in page.locator('.group[data-group-index="0"]').get_attribute("class")
    assert undo_index(page) == 1
    page.keyboard.press("Control+z")
    assert "groups" not in document(page)["ui"] and page.locator(".group").count() == 0
    page.keyboard.press("Control+y")
    assert document(page)["ui"]["groups"] == groups
    assert page.errors == []


def test_dragging_the_title_moves_the_group_with_its_contents_in_one_undo_step(server, browser):
    page = open_at_scale_1(browser, server["base"], grouped_document())
    before = document(page)
    start = title_point(page, 0)
    drag(page, start, (start[0] + 200, start[1] + 100))
    after = document(page)
    assert after["ui"]["groups"][0]["bounding"] == [200, 100, 420, 720]
    assert after["ui"]["groups"][1]["bounding"] == [220, 150, 340, 240]  # the nested group came along
    old, new = positions(before), positions(after)
    for nid in old:
        moved = nid in ("1", "2")
        assert new[nid] == ([old[nid][0] + 200, old[nid][1] + 100] if moved else old[nid]), nid
    assert after["ui"]["notes"][0]["pos"] == [240, 660]
    assert page.locator('.node[data-node-id="1"]').evaluate("e => e.style.left") == "240px"
    assert undo_index(page) == 1
    page.keyboard.press("Control+z")
    assert document(page)["ui"]["groups"] == before["ui"]["groups"] and positions(document(page)) == old
    assert page.errors == []


def test_the_inner_group_is_on_top_and_moves_alone(server, browser):
    page = open_at_scale_1(browser, server["base"], grouped_document())
    # Nested: the inner group is drawn after (above) the outer one.
    order = page.locator(".group").evaluate_all("es => es.map(e => e.dataset.groupIndex)")
    assert order == ["0", "1"]
    page.evaluate("() => { const e = cascade.editor; e.graph.groups.reverse(); e.view.render(); }")
    assert page.locator(".group").evaluate_all("es => es.map(e => e.dataset.groupIndex)") == ["1", "0"]
    page.evaluate("() => { const e = cascade.editor; e.graph.groups.reverse(); e.view.render(); }")
    start = title_point(page, 1)
    drag(page, start, (start[0] + 50, start[1] + 30))
    after = document(page)
    assert after["ui"]["groups"][0]["bounding"] == OUTER
    assert after["ui"]["groups"][1]["bounding"] == [70, 80, 340, 240]
    assert positions(after)["1"] == [90, 140] and positions(after)["2"] == [40, 330]
    assert "selected" in page.locator('.group[data-group-index="1"]').get_attribute("class")
    assert "selected" not in page.locator('.group[data-group-index="0"]').get_attribute("class")
    assert page.errors == []


def test_the_corner_resizes_and_a_pinned_group_stays(server, browser):
    page = open_at_scale_1(browser, server["base"], grouped_document())
    corner = page.locator('.group[data-group-index="0"] .group-resize').bounding_box()
    at = (corner["x"] + 8, corner["y"] + 8)
    drag(page, at, (at[0] + 100, at[1] + 50))
    assert document(page)["ui"]["groups"][0]["bounding"] == [0, 0, 520, 770]
    assert positions(document(page))["1"] == [40, 110]  # resizing moves nothing inside
    assert undo_index(page) == 1
    # Pin (the bar's tool): stored as ComfyUI's flags.pinned; then neither drag nor resize changes it.
    page.mouse.click(*title_point(page, 0))
    page.locator('.group[data-group-index="0"] [data-group-action="pin"]').click()
    assert document(page)["ui"]["groups"][0]["flags"] == {"pinned": True}
    assert undo_index(page) == 2
    before = document(page)
    start = title_point(page, 0)
    drag(page, start, (start[0] + 200, start[1] + 100))
    assert document(page)["ui"]["groups"] == before["ui"]["groups"]
    assert positions(document(page)) == positions(before) and undo_index(page) == 2
    assert page.locator('.group[data-group-index="0"] .group-resize').is_hidden()
    page.locator('.group[data-group-index="0"] [data-group-action="pin"]').click()
    assert "flags" not in document(page)["ui"]["groups"][0]
    assert page.errors == []


def test_double_click_renames_and_escape_cancels(server, browser):
    page = open_at_scale_1(browser, server["base"], grouped_document())
    page.mouse.dblclick(*title_point(page, 0))
    edit = page.locator(".group-title-edit")
    assert edit.input_value() == "Outer"
    assert page.locator(".search-popup").count() == 0  # the canvas's double-click search stayed shut
    edit.fill("Loaders")
    edit.press("Enter")
    assert document(page)["ui"]["groups"][0]["title"] == "Loaders"
    assert page.locator('.group[data-group-index="0"] .group-name').inner_text() == "Loaders"
    page.mouse.dblclick(*title_point(page, 0))
    page.locator(".group-title-edit").fill("nope")
    page.locator(".group-title-edit").press("Escape")
    assert document(page)["ui"]["groups"][0]["title"] == "Loaders" and undo_index(page) == 1
    page.keyboard.press("Control+z")
    assert document(page)["ui"]["groups"][0]["title"] == "Outer"
    assert page.errors == []


def test_colour_from_the_palette_and_right_click(server, browser):
    doc = grouped_document()
    doc["ui"]["groups"][1]["bounding"] = [20, 36, 380, 240]  # the inner title bar right under the outer's
    page = open_at_scale_1(browser, server["base"], doc)
    page.mouse.click(*title_point(page, 0))
    page.locator('.group[data-group-index="0"] [data-group-action="palette"]').click()
    # The palette opens over the nested group's title bar and takes the clicks there.
    swatch = page.locator('.group[data-group-index="0"] .group-swatch[data-group-color="#3f789e"]')
    sx, sy = swatch.bounding_box()["x"] + 9, swatch.bounding_box()["y"] + 9
    assert page.evaluate("([x, y]) => document.elementFromPoint(x, y).dataset.groupColor", [sx, sy]) == "#3f789e"
    page.locator('.group[data-group-index="0"] .group-swatch[data-group-color="#8a8"]').click()
    assert document(page)["ui"]["groups"][0]["color"] == "#8a8"
    style = page.locator('.group[data-group-index="0"]').evaluate("e => e.style.getPropertyValue('--group-color')")
    assert style == "#8a8"
    page.mouse.click(*title_point(page, 1), button="right")
    page.locator('.group[data-group-index="1"] .group-swatch[data-group-color=""]').click()
    assert "color" not in document(page)["ui"]["groups"][1]
    assert undo_index(page) == 2
    page.keyboard.press("Control+z")
    assert document(page)["ui"]["groups"][1]["color"] == "#88a"
    assert page.errors == []


def test_delete_removes_a_selected_group_and_keeps_its_nodes(server, browser):
    page = open_at_scale_1(browser, server["base"], grouped_document())
    before = document(page)
    page.mouse.click(*title_point(page, 1))
    assert "selected" in page.locator('.group[data-group-index="1"]').get_attribute("class")
    page.keyboard.press("Delete")
    after = document(page)
    assert [g["title"] for g in after["ui"]["groups"]] == ["Outer"]
    assert after["nodes"] == before["nodes"] and after["ui"]["notes"] == before["ui"]["notes"]
    # Clicking a node deselects the group: Delete then removes the node, not the other group.
    page.mouse.click(*title_point(page, 0))
    page.locator('.node[data-node-id="4"] .node-header').click()
    assert "selected" not in page.locator('.group[data-group-index="0"]').get_attribute("class")
    page.keyboard.press("Delete")
    assert "4" not in document(page)["nodes"] and len(document(page)["ui"]["groups"]) == 1
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    assert document(page)["ui"]["groups"] == before["ui"]["groups"]
    # The bar's ✕ removes too.
    page.mouse.click(*title_point(page, 0))
    page.locator('.group[data-group-index="0"] [data-group-action="remove"]').click()
    assert [g["title"] for g in document(page)["ui"]["groups"]] == ["Inner"]
    assert page.errors == []


def test_a_group_selected_in_one_workflow_is_not_deleted_in_the_next(server, browser):
    page = open_at_scale_1(browser, server["base"], grouped_document())
    page.mouse.click(*title_point(page, 0))
    other = grouped_document()
    other["ui"]["groups"][0]["title"] = "Other"
    page.evaluate("d => cascade.editor.replace(d)", other)
    page.keyboard.press("Delete")
    assert [g["title"] for g in document(page)["ui"]["groups"]] == ["Other", "Inner"]
    # Nor after an undo step, where indices may name other groups.
    page.mouse.click(*title_point(page, 1))
    page.keyboard.press("Control+z")
    page.keyboard.press("Delete")
    assert [g["title"] for g in document(page)["ui"]["groups"]] == ["Outer", "Inner"]
    assert page.errors == []


def test_reroute_points_inside_a_dragged_group_move_with_it(server, browser):
    """A point of the link 2 → 6 inside the outer group moves with the group (as ComfyUI's); the one
    outside stays. Before, every point stayed, so the moved nodes' links bent back to the old spot."""
    doc = grouped_document()
    doc["ui"]["reroutes"] = [{"id": "in", "pos": [380, 400]}, {"id": "out", "pos": [600, 300], "parent": "in"}]
    doc["nodes"]["6"]["ui"]["link_reroutes"] = {"stage_c": "out"}
    page = open_at_scale_1(browser, server["base"], doc)
    start = title_point(page, 0)
    drag(page, start, (start[0] + 200, start[1] + 100))
    after = document(page)
    assert after["ui"]["reroutes"] == [{"id": "in", "pos": [580, 500]}, {"id": "out", "pos": [600, 300], "parent": "in"}]
    assert page.locator('.reroute[data-reroute-id="in"]').evaluate("e => [e.style.left, e.style.top]") == ["580px", "500px"]
    assert undo_index(page) == 1
    page.keyboard.press("Control+z")
    assert document(page)["ui"]["reroutes"][0]["pos"] == [380, 400]
    assert page.errors == []
