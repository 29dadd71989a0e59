"""Off-screen culling (web/editor/cull.js): in a big graph, nodes far from the view skip layout and paint
(`content-visibility: hidden`), nodes in view never do, and culling changes no node's size nor any link's
shape. A pan of a 500-node graph otherwise ran a layout over ~17,000 layout objects and recomputed every
paint layer's cull rect on every pointer move (bench/editor_big_graph.py --trace, README)."""
from __future__ import annotations

import pytest

from tests.big_graph import big_document
from tests.test_web_big_graph import EMPTY_SPOT, LINK_DS, SET_VIEW
from tests.web_helpers import browser, drag, open_editor, server  # noqa: F401

pytestmark = pytest.mark.browser

# Every node's size and every link's shape, read with every node rendered (the truth) or as culled now.
SIZES = "() => Object.fromEntries([...cascade.editor.view.nodeEls].map(([id, e]) => [id, [e.offsetWidth, e.offsetHeight]]))"
UNCULL = "() => { const v = cascade.editor.view; v.culler.show(v.nodeEls.values()); v.drawLinks(); }"
RECULL = "() => { const v = cascade.editor.view; v.culler.update(); v.drawLinks(); }"
# For each node: [overlaps the canvas on screen, has .far, computed content-visibility].
SEEN = """() => { const c = document.getElementById('canvas').getBoundingClientRect();
    return Object.fromEntries([...cascade.editor.view.nodeEls].map(([id, e]) => { const b = e.getBoundingClientRect();
        return [id, [b.right > c.left && b.left < c.right && b.bottom > c.top && b.top < c.bottom,
                     e.classList.contains('far'), getComputedStyle(e).contentVisibility]]; })); }"""


def check_seen(page) -> set[str]:
    """Nodes in view are rendered, the culled ones are skipped; returns the culled ids."""
    seen = page.evaluate(SEEN)
    assert all(not far and cv == "visible" for on, far, cv in seen.values() if on)
    assert all(cv == "hidden" for on, far, cv in seen.values() if far)
    return {k for k, (on, far, cv) in seen.items() if far}


def test_far_nodes_are_culled_without_changing_sizes_or_links(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"], big_document(500))
    page.evaluate(SET_VIEW)  # zoom 0.6 at the graph's top-left corner: a few dozen of 500 nodes in view
    page.evaluate(UNCULL)
    sizes, links = page.evaluate(SIZES), page.evaluate(LINK_DS)
    assert len(links) == 496
    page.evaluate(RECULL)
    far = check_seen(page)
    assert 300 < len(far) < 500
    # A culled node keeps its size (minimap, box select) and the links meet its sockets where they did.
    assert page.evaluate(SIZES) == sizes
    assert page.evaluate(LINK_DS) == links

    # A long pan brings other nodes into view: they are rendered before they show, others get culled.
    spot = page.evaluate(EMPTY_SPOT)
    drag(page, spot, (spot[0] - 900, spot[1] - 500), steps=30)
    assert page.evaluate("() => cascade.editor.graph.view.offset") == [-900, -500]
    far_after = check_seen(page)
    assert far_after != far and len(far_after) > 300
    assert page.evaluate(SIZES) == sizes
    page.evaluate("() => cascade.editor.view.drawLinks()")
    assert page.evaluate(LINK_DS) == links
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_culled_node_dragged_with_the_selection_is_rendered(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"], big_document(500))
    page.evaluate(SET_VIEW)
    far = sorted(check_seen(page), key=int)
    assert far
    page.evaluate("id => cascade.editor.select(['6', id])", far[0])
    title = page.locator('.node[data-node-id="6"] .node-header').bounding_box()
    grab = (title["x"] + 20, title["y"] + title["height"] / 2)
    drag(page, grab, (grab[0] + 40, grab[1] + 20), steps=4)
    assert not page.evaluate("id => cascade.editor.view.nodeEls.get(id).classList.contains('far')", far[0])
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_node_being_typed_in_is_never_culled(server, browser):  # noqa: F811
    """A prompt keeps the focus when the view jumps far away (wheel zoom, minimap): culling its node dropped
    the focus to the page, and the next Backspace deleted the selected node instead of a character."""
    page = open_editor(browser, server["base"], big_document(500))
    page.evaluate(SET_VIEW)
    page.locator('.node[data-node-id="4"] textarea').click()
    page.evaluate("() => { const v = cascade.editor.graph.view; v.offset = [-9000, -4000]; cascade.editor.view.applyTransform(); }")
    far = check_seen(page)
    assert len(far) > 300 and "4" not in far
    assert page.evaluate("() => document.activeElement.closest('.node')?.dataset.nodeId") == "4"
    page.keyboard.press("End")
    page.keyboard.press("Backspace")
    assert page.evaluate("() => cascade.editor.graph.nodes.get('4')?.values.text") is not None
    assert page.locator('.node[data-node-id="4"] textarea').input_value() == "a glass bottl"
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_culled_node_that_grows_keeps_its_new_size(server, browser):  # noqa: F811
    """Run results (text outputs, errors, images) reaching a culled node: it is measured again, so culling,
    the minimap and the box it shows as never use the size it had before it grew."""
    page = open_editor(browser, server["base"], big_document(500))
    page.evaluate(SET_VIEW)
    far = sorted(check_seen(page), key=int)
    grown = far[-1], far[-2]
    page.evaluate("""([a, b]) => { const v = cascade.editor.view; v.status.texts[a] = Array(30).fill('a line of text');
        v.status.errors[b] = {message: 'Weights folder missing: '.repeat(12), inputs: {}}; v.applyStatus(); }""", grown)
    culled = page.evaluate(SIZES)
    assert check_seen(page) >= set(far) - set(grown)
    page.evaluate(UNCULL)
    assert page.evaluate(SIZES) == culled
    assert page.errors == []  # type: ignore[attr-defined]
