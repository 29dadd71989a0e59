"""Panning touches only two transforms: the pan wrapper's (around the node layer) and the dot grid's (a moving
background on the canvas itself repainted the whole canvas on every pan frame; a transform on the layer, the
parent of every node, made each move's layout twice as long; bench/editor_big_graph.py has the figures)."""
from __future__ import annotations

import pytest

from tests.web_helpers import browser, drag, empty_spot, open_editor, server  # noqa: F401

pytestmark = pytest.mark.browser

STATE = """() => ({canvas: document.getElementById('canvas').getAttribute('style'),
    grid: document.querySelector('#canvas > .grid')?.style.transform ?? null,
    pan: document.querySelector('#canvas > .pan').style.transform,
    // The layer (where the nodes are placed) is the wrapper's only child and is never transformed itself.
    layer: [document.querySelector('#canvas > .pan').children.length, document.querySelector('#canvas > .pan > .layer').style.transform,
            getComputedStyle(document.querySelector('#canvas > .pan > .layer')).transform],
    view: cascade.editor.graph.view})"""


def test_pan_moves_the_grid_by_transform_modulo_one_cell(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.evaluate("() => { const v = cascade.editor.graph.view; v.scale = 0.5; v.offset = [0, 0]; cascade.editor.view.applyTransform(); }")
    before = page.evaluate(STATE)
    assert before["grid"] == "translate(-10px, -10px)"  # one 10-px cell (20 at zoom 0.5) up and left
    start = empty_spot(page)
    drag(page, start, (start[0] + 37, start[1] - 23), steps=5)
    after = page.evaluate(STATE)
    assert after["view"]["offset"] == [37, -23]
    assert after["pan"] == "translate(37px, -23px) scale(0.5)"
    assert before["layer"] == after["layer"] == [1, "", "none"]
    # The grid lands on the graph's own cells: 37 mod 10 = 7 → -3; -23 mod 10 = 7 → -3.
    assert after["grid"] == "translate(-3px, -3px)"
    assert after["canvas"] == before["canvas"]  # nothing on the canvas element itself changes on a pan
    # The grid covers the whole canvas wherever it sits, and never takes a click.
    cover = page.evaluate("""() => { const c = document.getElementById('canvas').getBoundingClientRect();
        const g = document.querySelector('#canvas > .grid').getBoundingClientRect();
        return [g.left <= c.left, g.top <= c.top, g.right >= c.right, g.bottom >= c.bottom,
                getComputedStyle(document.querySelector('#canvas > .grid')).pointerEvents]; }""")
    assert cover == [True, True, True, True, "none"]
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_pan_redraws_the_minimap_from_its_cached_boxes(server, browser):  # noqa: F811
    """A pan frame copies the minimap's cached boxes (gathering and drawing 500 of them took 0.15 ms a frame,
    the copy 0.02 ms); an edit or a selection change still shows on the next drawing."""
    from tests.big_graph import big_document
    from tests.test_web_minimap import FRAMES, PIXEL, is_node, node_centre

    page = open_editor(browser, server["base"], big_document(40))
    page.evaluate("() => { cascade.editor.select([]); const m = cascade.minimap, b = m.boxes.bind(m); window.__boxes = 0;"
                  " m.boxes = () => { window.__boxes++; return b(); }; }")
    page.evaluate(FRAMES)
    redraws = page.evaluate("() => cascade.minimap.redraws")
    start = empty_spot(page)
    drag(page, start, (start[0] + 40, start[1] + 20), steps=5)
    page.evaluate(FRAMES)
    assert page.evaluate("() => cascade.minimap.redraws") > redraws
    assert page.evaluate("() => window.__boxes") == 0  # the pan did not gather the graph's boxes again
    assert is_node(page.evaluate(PIXEL, node_centre(page, "6")))
    # Selecting shows in blue on the next pan frame, though no graph event fired.
    page.evaluate("() => cascade.editor.select(['6'])")
    drag(page, start, (start[0] - 10, start[1]), steps=2)
    page.evaluate(FRAMES)
    px = page.evaluate(PIXEL, node_centre(page, "6"))
    assert px[2] > px[0] + 100 and px[3] == 255  # #5b9cff
    assert page.errors == []  # type: ignore[attr-defined]
