"""Browser tests of issue 13 (leftovers): copy/paste carries groups and reroute points
(web/editor/clipboard.js, clip_model.js), each paste one undo step and repeated pastes stepping
aside; the node library's search box keeps the focus after Enter, its Ctrl+Z/Ctrl+Y undo and redo
the graph until the text is edited, and Escape gives the focus back to the canvas (library.js)."""
from __future__ import annotations

import pytest

from tests.web_helpers import grouped_document as shared_grouped_document, browser, document, empty_spot, open_editor, server  # noqa: F401
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser

INDEX = "() => cascade.editor.history.index"
DEPTH = "() => cascade.editor.history.stack.length"


def open_at_scale_1(browser, base: str, doc: dict):  # noqa: F811
    """The editor with `doc`, viewed at scale 1 from the origin, its history starting there."""
    page = open_editor(browser, base, doc)
    page.evaluate("() => { const e = cascade.editor; e.graph.view = {offset: [0, 0], scale: 1};"
                  " e.view.applyTransform(); e.history.reset(e.snapshot()); }")
    return page


def rerouted_document() -> dict:
    """The stub pipeline with two chained points on 4 → 6.positive and one on 5 → 6.negative."""
    doc = pipeline_document(delay=0.0)
    doc["ui"]["reroutes"] = [{"id": "r1", "pos": [520, 140]}, {"id": "r2", "pos": [580, 160], "parent": "r1"},
                             {"id": "r3", "pos": [560, 330]}]
    doc["nodes"]["6"]["ui"]["link_reroutes"] = {"positive": "r2", "negative": "r3"}
    return doc


def points(doc: dict, nid: str, input_: str) -> list[list[int]]:
    """The positions of the points the link into nid.input_ passes, source first."""
    by_id = {r["id"]: r for r in doc["ui"].get("reroutes", [])}
    rid, out = doc["nodes"][nid].get("ui", {}).get("link_reroutes", {}).get(input_), []
    while rid is not None:
        out.append(by_id[rid]["pos"])
        rid = by_id[rid].get("parent")
    return out[::-1]


def point_ids(doc: dict, nid: str) -> set[str]:
    return set(doc["nodes"][nid].get("ui", {}).get("link_reroutes", {}).values())


def select(page, *ids: str) -> None:
    page.locator(f'.node[data-node-id="{ids[0]}"] .node-header').click()
    for nid in ids[1:]:
        page.locator(f'.node[data-node-id="{nid}"] .node-header').click(modifiers=["Shift"])


def paste(page, key: str, count: int) -> dict:
    """Press `key` and wait until the graph has `count` nodes; the document then."""
    page.keyboard.press(key)
    page.wait_for_function(f"() => cascade.editor.graph.nodes.size === {count}")
    return document(page)


def test_pasted_links_keep_their_points_moved_with_the_paste_one_undo_step_each(server, browser):  # noqa: F811
    page = open_at_scale_1(browser, server["base"], rerouted_document())
    select(page, "4", "6")
    page.keyboard.press("Control+c")
    page.mouse.move(*empty_spot(page))
    index = page.evaluate(INDEX)
    doc = paste(page, "Control+v", 10)
    assert page.evaluate(INDEX) == index + 1  # nodes and points in one step
    new4, new6 = sorted((i for i in doc["nodes"] if int(i) > 8), key=int)
    assert doc["nodes"][new6]["inputs"]["positive"] == [new4, 0]
    d = [a - b for a, b in zip(doc["nodes"][new4]["ui"]["pos"], doc["nodes"]["4"]["ui"]["pos"])]
    assert points(doc, new6, "positive") == [[520 + d[0], 140 + d[1]], [580 + d[0], 160 + d[1]]]
    assert not point_ids(doc, new6) & {"r1", "r2", "r3"}  # fresh points, not the original's
    assert points(doc, "6", "positive") == [[520, 140], [580, 160]]
    assert "negative" not in doc["nodes"][new6]["inputs"] and points(doc, new6, "negative") == []
    assert page.locator(".reroute").count() == 5  # drawn
    # Again at the same spot: another copy 30 px down-right, with its own points.
    doc2 = paste(page, "Control+v", 12)
    third6 = max(doc2["nodes"], key=int)
    assert points(doc2, third6, "positive") == [[x + 30, y + 30] for x, y in points(doc, new6, "positive")]
    assert not point_ids(doc2, third6) & point_ids(doc2, new6)
    assert page.evaluate(INDEX) == index + 2
    page.keyboard.press("Control+z")
    assert document(page)["ui"]["reroutes"] == doc["ui"]["reroutes"] and page.locator(".reroute").count() == 5
    assert page.errors == []  # type: ignore[attr-defined]


def test_ctrl_shift_v_keeps_the_points_of_links_from_outside(server, browser):  # noqa: F811
    page = open_at_scale_1(browser, server["base"], rerouted_document())
    select(page, "6")
    page.keyboard.press("Control+c")
    page.mouse.move(*empty_spot(page))
    doc = paste(page, "Control+Shift+v", 9)
    pasted = doc["nodes"]["9"]
    assert pasted["inputs"]["positive"] == ["4", 0] and pasted["inputs"]["negative"] == ["5", 0]
    d = [a - b for a, b in zip(pasted["ui"]["pos"], doc["nodes"]["6"]["ui"]["pos"])]
    assert points(doc, "9", "positive") == [[520 + d[0], 140 + d[1]], [580 + d[0], 160 + d[1]]]
    assert points(doc, "9", "negative") == [[560 + d[0], 330 + d[1]]]
    assert not point_ids(doc, "9") & {"r1", "r2", "r3"}
    assert page.errors == []  # type: ignore[attr-defined]


def grouped_document() -> dict:
    """Nodes 1 and 2 and a note in group "Loaders" (nested "Inner" around node 1); the rest outside."""
    return shared_grouped_document([{"title": "Loaders", "bounding": [0, 0, 420, 720], "color": "#8a8"},
                                   {"title": "Inner", "bounding": [20, 50, 340, 240]}])


def title_point(page, index: int) -> tuple[float, float]:
    box = page.locator(f'.group[data-group-index="{index}"] .group-title').bounding_box()
    assert box is not None
    return box["x"] + 40, box["y"] + box["height"] / 2


def test_a_selected_group_is_copied_with_what_lies_in_it_and_pastes_step_aside(server, browser):  # noqa: F811
    page = open_at_scale_1(browser, server["base"], grouped_document())
    page.mouse.click(*title_point(page, 0))
    assert page.evaluate("() => cascade.editor.selectedGroup") == 0
    page.keyboard.press("Control+c")
    spot = empty_spot(page)
    page.mouse.move(*spot)
    index = page.evaluate(INDEX)
    doc = paste(page, "Control+v", 10)
    assert page.evaluate(INDEX) == index + 1
    groups = doc["ui"]["groups"]
    assert [g["title"] for g in groups] == ["Loaders", "Inner", "Loaders", "Inner"]
    at = page.evaluate("([x, y]) => cascade.editor.view.toGraph(x, y).map(Math.round)", list(spot))
    assert groups[2]["bounding"] == [at[0], at[1], 420, 720] and groups[2]["color"] == "#8a8"  # its corner at the pointer
    assert groups[3]["bounding"] == [at[0] + 20, at[1] + 50, 340, 240]
    new = {doc["nodes"][i]["class_type"]: doc["nodes"][i]["ui"]["pos"] for i in ("9", "10")}
    assert new == {"LoadTextEncoder": [at[0] + 40, at[1] + 110], "LoadStageC": [at[0] + 40, at[1] + 330]}
    assert [m["pos"] for m in doc["ui"]["notes"]] == [[40, 560], [at[0] + 40, at[1] + 560]]
    assert page.locator(".group").count() == 4
    # Again without moving: no copy on top of the last one.
    doc2 = paste(page, "Control+v", 12)
    assert doc2["ui"]["groups"][4]["bounding"] == [at[0] + 30, at[1] + 30, 420, 720]
    page.keyboard.press("Control+z")
    assert document(page)["ui"]["groups"] == groups and page.locator(".group").count() == 4
    assert page.errors == []  # type: ignore[attr-defined]


def test_groups_selected_with_their_nodes_are_copied_and_cut_takes_them(server, browser):  # noqa: F811
    page = open_at_scale_1(browser, server["base"], grouped_document())
    before = document(page)
    # Node 1 alone is all of "Inner" (and part of "Loaders"): Inner comes along, Loaders does not.
    select(page, "1")
    page.keyboard.press("Control+c")
    page.mouse.move(*empty_spot(page))
    doc = paste(page, "Control+v", 9)
    assert [g["title"] for g in doc["ui"]["groups"]] == ["Loaders", "Inner", "Inner"]
    page.keyboard.press("Control+z")
    # Ctrl+A then Ctrl+X: everything goes, groups too, in one undo step.
    page.locator("#canvas").focus()
    page.keyboard.press("Control+a")
    index = page.evaluate(INDEX)
    page.keyboard.press("Control+x")
    cut = document(page)
    assert cut["nodes"] == {} and "groups" not in cut["ui"] and cut["ui"]["notes"] == []
    assert page.evaluate(INDEX) == index + 1
    doc = paste(page, "Control+v", 8)
    assert [g["title"] for g in doc["ui"]["groups"]] == ["Loaders", "Inner"]
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    assert document(page)["ui"]["groups"] == before["ui"]["groups"]
    assert len(document(page)["nodes"]) == 8
    assert page.errors == []  # type: ignore[attr-defined]


def test_library_search_keeps_focus_and_its_ctrl_z_undoes_the_add_until_typing(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.locator("#library-btn").click()
    box = page.locator(".library-search")
    box.fill("Save Image")
    before, depth = set(document(page)["nodes"]), page.evaluate(DEPTH)
    page.keyboard.press("Enter")
    added = set(document(page)["nodes"]) - before
    assert len(added) == 1 and page.evaluate(DEPTH) == depth + 1
    assert page.evaluate("() => document.activeElement.classList.contains('library-search')")
    page.keyboard.press("Enter")  # more can be added from the box
    assert len(set(document(page)["nodes"]) - before) == 2
    # Ctrl+Z in the box undoes the adds (the text stays); Ctrl+Shift+Z and Ctrl+Y redo.
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    assert set(document(page)["nodes"]) == before and box.input_value() == "Save Image"
    page.keyboard.press("Control+Shift+z")
    assert len(set(document(page)["nodes"]) - before) == 1
    page.keyboard.press("Control+y")
    assert len(set(document(page)["nodes"]) - before) == 2
    # Once the text is edited, Ctrl+Z edits the text again, as in any field.
    page.keyboard.type("s")
    page.keyboard.press("Control+z")
    assert len(set(document(page)["nodes"]) - before) == 2 and box.input_value() == "Save Image"
    # Escape clears the search and gives the focus back to the canvas: N there closes the panel.
    page.keyboard.press("Escape")
    assert box.input_value() == "" and page.evaluate("() => document.activeElement.id") == "canvas"
    page.keyboard.press("n")
    assert page.locator("#library-panel").is_hidden()
    assert page.errors == []  # type: ignore[attr-defined]


def test_ctrl_v_lands_at_the_pointer_when_an_outside_link_ran_through_a_far_point(server, browser):  # noqa: F811
    doc = rerouted_document()
    doc["ui"]["reroutes"][0]["pos"] = [-3000, -2000]  # r1, on 4 → 6.positive (4 is not copied)
    page = open_at_scale_1(browser, server["base"], doc)
    select(page, "6")
    page.keyboard.press("Control+c")
    spot = empty_spot(page)
    page.mouse.move(*spot)
    pasted = paste(page, "Control+v", 9)
    at = page.evaluate("([x, y]) => cascade.editor.view.toGraph(x, y).map(Math.round)", list(spot))
    # The dropped link's points are not pasted, so they do not move the node off the pointer.
    assert pasted["nodes"]["9"]["ui"]["pos"] == at and points(pasted, "9", "positive") == []
    assert len(pasted["ui"]["reroutes"]) == 3
    assert page.errors == []  # type: ignore[attr-defined]


def paste_text(page, text: str) -> None:
    """A paste event carrying `text`, as the system clipboard would deliver it."""
    page.evaluate("t => { const d = new DataTransfer(); d.setData('text/plain', t);"
                  " document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: d, bubbles: true})); }", text)


def test_a_malformed_pasted_document_adds_what_it_can_in_one_step_never_half(server, browser):  # noqa: F811
    import json
    page = open_at_scale_1(browser, server["base"], pipeline_document(delay=0.0))
    page.mouse.move(*empty_spot(page))
    index, before = page.evaluate(INDEX), document(page)
    bad = {"version": 1, "nodes": {"1": None, "2": {"class_type": "SaveImage", "inputs": "x", "ui": "bad"}, "3": [1]},
           "ui": {"notes": [{"text": "no position"}, "n", {"pos": [0, 200], "text": None}], "groups": "x"}}
    paste_text(page, json.dumps(bad))
    doc = document(page)
    assert set(doc["nodes"]) == set(before["nodes"]) | {"9"} and doc["nodes"]["9"]["class_type"] == "SaveImage"
    assert doc["nodes"]["9"].get("ui", {}).keys() <= {"pos"}  # no characters of "bad" as ui keys
    assert [m["text"] for m in doc["ui"]["notes"]][len(before["ui"]["notes"]):] == [""]
    assert page.evaluate(INDEX) == index + 1 and page.locator(".node").count() == 9
    # Nothing pastable at all: no step, no change (before: placeholder nodes stayed behind, unrecorded).
    paste_text(page, json.dumps({"version": 1, "nodes": {"1": None}, "ui": {"notes": "nope"}}))
    assert document(page) == doc and page.evaluate(INDEX) == index + 1
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_edit_that_throws_half_way_leaves_the_graph_as_last_recorded(server, browser):  # noqa: F811
    page = open_at_scale_1(browser, server["base"], pipeline_document(delay=0.0))
    before, index = document(page), page.evaluate(INDEX)
    thrown = page.evaluate("""() => { const e = cascade.editor;
      try { e.commit(() => { e.graph.addNode('SaveImage', [0, 0]); e.graph.removeNode('1'); throw new Error('half'); }); }
      catch (err) { return String(err.message); } return null; }""")
    assert thrown == "half"
    assert document(page) == before and page.evaluate(INDEX) == index
    assert page.locator(".node").count() == len(before["nodes"])


def test_library_enter_again_adds_beside_the_last_add_not_on_top(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.locator("#library-btn").click()
    page.locator(".library-search").fill("Save Image")
    before = set(document(page)["nodes"])
    for _ in range(3):
        page.keyboard.press("Enter")
    doc = document(page)
    spots = [doc["nodes"][i]["ui"]["pos"] for i in sorted(set(doc["nodes"]) - before, key=int)]
    assert len(spots) == 3
    assert spots[1] == [spots[0][0] + 30, spots[0][1] + 30] and spots[2] == [spots[0][0] + 60, spots[0][1] + 60]
    assert page.errors == []  # type: ignore[attr-defined]
