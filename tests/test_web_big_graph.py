"""A 500-node workflow in the editor: it loads, pans and drags without the document going astray, and a
drag redraws only the dragged node's links (speed figures: bench/editor_big_graph.py)."""
from __future__ import annotations

import time

import pytest

from tests.big_graph import big_document
from tests.web_helpers import browser, document, drag, open_editor, server, strip_view  # noqa: F401

pytestmark = pytest.mark.browser

SET_VIEW = "() => { const v = cascade.editor.graph.view; v.scale = 0.6; v.offset = [0, 0]; cascade.editor.view.applyTransform(); }"
# Every link path's `d`, and a full redraw's: they must agree after an incremental drag.
LINK_DS = "() => Object.fromEntries([...document.querySelectorAll('svg.links path.link')].map(p => [p.dataset.link, p.getAttribute('d')]))"


# The bare-canvas point nearest the bottom-right corner, scanning a 20-px grid (None if the graph covers all).
EMPTY_SPOT = """() => {
    const r = document.getElementById('canvas').getBoundingClientRect();
    for (let y = r.bottom - 40; y > r.top + 40; y -= 20)
        for (let x = r.right - 40; x > r.left + 40; x -= 20)
            if (document.elementFromPoint(x, y)?.id === 'canvas') return [x, y];
    return null;
}"""


def test_big_graph_loads_pans_and_drags_consistently(server, browser):  # noqa: F811
    doc = big_document(500)
    page = open_editor(browser, server["base"])
    start = time.perf_counter()
    page.evaluate("d => cascade.editor.load(d, true)", doc)
    assert time.perf_counter() - start < 8  # generous: the bench measures ~0.4 s
    assert page.locator(".node").count() == 500
    assert page.locator("svg.links path.link").count() == 496
    loaded = strip_view(document(page))
    assert set(loaded["nodes"]) == set(doc["nodes"])

    # Pan: the view moves by the mouse's travel, the graph does not change, nothing is an undo step.
    page.evaluate(SET_VIEW)
    spot = page.evaluate(EMPTY_SPOT)  # a point of bare canvas (where a pan starts), found, not assumed
    assert spot is not None
    undo_depth = page.evaluate("() => cascade.editor.history.stack.length")
    drag(page, spot, (spot[0] - 200, spot[1] - 100), steps=10)
    assert page.evaluate("() => cascade.editor.graph.view.offset") == [-200, -100]
    assert strip_view(document(page)) == loaded
    assert page.evaluate("() => cascade.editor.history.stack.length") == undo_depth

    # Drag the first sampler by its title: only it moves (by travel / zoom), one undo step, and only its
    # own four link paths are rewritten; the others are the very same elements with the same shape.
    page.evaluate(SET_VIEW)
    page.evaluate("() => { for (const p of document.querySelectorAll('svg.links path.link')) p.__before = true; }")
    before = page.evaluate(LINK_DS)
    title = page.locator('.node[data-node-id="6"] .node-header').bounding_box()
    grab = (title["x"] + 20, title["y"] + title["height"] / 2)
    drag(page, grab, (grab[0] + 120, grab[1] + 60), steps=10)
    moved = strip_view(document(page))
    assert moved["nodes"]["6"]["ui"]["pos"] == [loaded["nodes"]["6"]["ui"]["pos"][0] + 200,
                                                loaded["nodes"]["6"]["ui"]["pos"][1] + 100]
    del moved["nodes"]["6"]["ui"]["pos"], loaded["nodes"]["6"]["ui"]["pos"]
    assert moved == loaded
    assert page.evaluate("() => cascade.editor.history.stack.length") == undo_depth + 1
    after = page.evaluate(LINK_DS)
    touching = {k for k in after if k.startswith("6:") or "->6." in k}
    assert len(touching) == 4
    assert {k for k in after if after[k] != before[k]} == touching
    kept = page.evaluate("() => [...document.querySelectorAll('svg.links path.link')].filter(p => p.__before).length")
    assert kept == 496  # no path was rebuilt: the drag only rewrote `d` on the four
    # The incremental paths are exactly what a full redraw draws.
    page.evaluate("() => cascade.editor.view.drawLinks()")
    assert page.evaluate(LINK_DS) == after
    assert page.errors == []  # type: ignore[attr-defined]
