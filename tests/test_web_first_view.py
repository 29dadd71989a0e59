"""The first view shows the whole default workflow in the part of the canvas no panel covers."""
from __future__ import annotations

import pytest

from tests.web_helpers import browser, open_editor, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

# Every node and note, as client rectangles.
ITEMS = "els => els.map(e => ({id: e.dataset.nodeId || e.dataset.noteId, ...e.getBoundingClientRect().toJSON()}))"


def uncovered_canvas(page) -> dict:
    """The canvas rectangle minus whatever side panel overlaps it (none should, but a panel drawn
    over the canvas would hide nodes just the same)."""
    c = page.locator("#canvas").bounding_box()
    left, right = c["x"], c["x"] + c["width"]
    for p in page.locator(".sidebar").evaluate_all("els => els.map(e => e.getBoundingClientRect().toJSON())"):
        if p["width"] and p["left"] < right and p["right"] > left:
            right = min(right, p["left"]) if p["left"] > left else right
            left = max(left, p["right"]) if p["right"] < right else left
    return {"left": left, "right": right, "top": c["y"], "bottom": c["y"] + c["height"]}


def assert_all_inside(page) -> None:
    area = uncovered_canvas(page)
    items = page.locator(".node, .note").evaluate_all(ITEMS)
    assert items
    outside = [i["id"] for i in items if not (area["left"] - 0.5 <= i["left"] and i["right"] <= area["right"] + 0.5
                                             and area["top"] - 0.5 <= i["top"] and i["bottom"] <= area["bottom"] + 0.5)]
    assert outside == [], f"outside the visible canvas {area}: {outside}"


def test_first_visit_fits_every_node_and_the_note_beside_the_panels(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.wait_for_selector(".node")
    assert page.locator(".sidebar").is_visible()
    assert page.locator(".note").count() == 1
    assert_all_inside(page)
    # New frames the default workflow the same way, from wherever the view was.
    page.evaluate("() => { const v = cascade.editor.graph.view; v.offset = [-3000, -2000]; cascade.editor.view.applyTransform(); }")
    page.locator("#new-btn").click()
    page.wait_for_function("() => cascade.editor.graph.view.offset[0] > -3000")
    assert_all_inside(page)
    assert page.errors == []  # type: ignore[attr-defined]
