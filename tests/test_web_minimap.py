"""The minimap (web/editor/minimap.js): the graph in miniature with the part in view outlined; it follows
edits and pans, redraws at most once a frame, and a click or drag in it moves the view."""
from __future__ import annotations

import pytest

from tests.web_helpers import browser, drag, empty_spot, open_editor, server  # noqa: F401

pytestmark = pytest.mark.browser

FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
# The colour of the minimap pixel over graph point (gx, gy), mapped with the last drawing's frame.
PIXEL = """([gx, gy]) => { const m = cascade.minimap, f = m.frame, dpr = devicePixelRatio;
    const x = Math.round((f.ox + gx * f.scale) * dpr), y = Math.round((f.oy + gy * f.scale) * dpr);
    return [...m.canvas.getContext('2d').getImageData(x, y, 1, 1).data]; }"""
NODE_RGB = [0x8A, 0x90, 0xA0]


def is_node(px: list[int]) -> bool:
    """A node's grey, opaque (the view's 12 % blue tint may lie over it)."""
    return px[3] == 255 and all(abs(a - b) <= 25 for a, b in zip(px, NODE_RGB))
# Where graph point (gx, gy) is on the page, through the minimap's frame.
CLIENT = """([gx, gy]) => { const f = cascade.minimap.frame, r = cascade.minimap.canvas.getBoundingClientRect();
    return [r.left + f.ox + gx * f.scale, r.top + f.oy + gy * f.scale]; }"""


def node_centre(page, node_id: str) -> list[float]:
    return page.evaluate("""id => { const n = cascade.editor.graph.nodes.get(id), e = cascade.editor.view.nodeEls.get(id);
        return [n.pos[0] + e.offsetWidth / 2, n.pos[1] + e.offsetHeight / 2]; }""", node_id)


def test_minimap_shows_nodes_and_view_and_follows_edits_and_pans(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.wait_for_selector(".node")
    page.evaluate("() => cascade.editor.select([])")
    page.evaluate(FRAMES)
    assert page.locator("canvas.minimap").is_visible()
    ids = page.evaluate("() => [...cascade.editor.graph.nodes.keys()]")
    for i in ids:  # every node is drawn where the frame maps it
        assert is_node(page.evaluate(PIXEL, node_centre(page, i))), i
    # ...and the padding around the graph is not (nothing is drawn there).
    assert not is_node(
        page.evaluate(PIXEL, page.evaluate("() => cascade.minimap.frame.bounds.slice(0, 2)")))
    # A graph edit (moving a node far away, one undo step) redraws: the node is drawn at its new place.
    page.evaluate("id => cascade.editor.commit(() => { cascade.editor.graph.nodes.get(id).pos = [5000, 3000]; })", ids[0])
    page.evaluate(FRAMES)
    assert page.evaluate("() => cascade.minimap.frame.bounds[2]") > 5000
    assert is_node(page.evaluate(PIXEL, node_centre(page, ids[0])))
    # The outlined rectangle is the part of the graph in view, and it moves with a pan (zoomed in on the
    # graph's middle, so the whole rectangle lies inside the drawn area).
    page.evaluate("""() => { const e = cascade.editor, f = cascade.minimap.frame, b = f.bounds, c = e.root;
        e.graph.view.scale = 1.5;
        e.graph.view.offset = [c.clientWidth / 2 - 1.5 * (b[0] + b[2]) / 2, c.clientHeight / 2 - 1.5 * (b[1] + b[3]) / 2];
        e.view.applyTransform(); }""")
    page.evaluate(FRAMES)
    seen = """() => { const v = cascade.editor.graph.view, c = document.getElementById('canvas');
        return [-v.offset[0] / v.scale, -v.offset[1] / v.scale, (c.clientWidth - v.offset[0]) / v.scale]; }"""
    top_mid = page.evaluate(seen)
    before = page.evaluate(PIXEL, [(top_mid[0] + top_mid[2]) / 2, top_mid[1]])
    assert before[2] > before[0] + 60  # the blue outline (#5b9cff) runs along the view's top edge
    redraws = page.evaluate("() => cascade.minimap.redraws")
    start = empty_spot(page)
    drag(page, start, (start[0] + 150, start[1] + 90), steps=6)
    page.evaluate(FRAMES)
    assert page.evaluate("() => cascade.minimap.redraws") > redraws
    moved = page.evaluate(seen)
    scale = page.evaluate("() => cascade.editor.graph.view.scale")
    assert moved[0] == pytest.approx(top_mid[0] - 150 / scale) and moved[1] == pytest.approx(top_mid[1] - 90 / scale)
    after = page.evaluate(PIXEL, [(moved[0] + moved[2]) / 2, moved[1]])
    assert after[2] > after[0] + 60
    assert page.errors == []  # type: ignore[attr-defined]


def test_minimap_click_and_drag_move_the_view_without_an_undo_step(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.wait_for_selector(".node")
    page.evaluate(FRAMES)
    depth = page.evaluate("() => cascade.editor.history.stack.length")
    target = page.evaluate("() => [...cascade.editor.graph.nodes.keys()].at(-1)")
    at = page.evaluate(CLIENT, node_centre(page, target))
    page.mouse.click(*at)
    # That node is now in the middle of the canvas (the page's own layout says so, not our maths).
    box = page.locator(f'.node[data-node-id="{target}"]').bounding_box()
    canvas = page.locator("#canvas").bounding_box()
    assert box["x"] + box["width"] / 2 == pytest.approx(canvas["x"] + canvas["width"] / 2, abs=2)
    assert box["y"] + box["height"] / 2 == pytest.approx(canvas["y"] + canvas["height"] / 2, abs=2)
    # Dragging in the minimap keeps centring on the point under the pointer.
    first = page.evaluate("() => [...cascade.editor.graph.nodes.keys()][0]")
    to = page.evaluate(CLIENT, node_centre(page, first))
    drag(page, at, to, steps=5)
    box = page.locator(f'.node[data-node-id="{first}"]').bounding_box()
    assert box["x"] + box["width"] / 2 == pytest.approx(canvas["x"] + canvas["width"] / 2, abs=2)
    assert page.evaluate("() => cascade.editor.history.stack.length") == depth  # a view change, not an edit
    assert page.errors == []  # type: ignore[attr-defined]


def test_minimap_redraws_once_per_frame_and_toggles(server, browser):  # noqa: F811
    page = open_editor(browser, server["base"])
    page.wait_for_selector(".node")
    page.evaluate(FRAMES)
    n = page.evaluate("""async () => { const before = cascade.minimap.redraws, e = cascade.editor;
        for (let i = 0; i < 50; i++) { e.graph.view.offset = [i, i]; e.view.applyTransform(); }
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        return cascade.minimap.redraws - before; }""")
    assert n == 1
    page.locator("#minimap-btn").click()
    assert page.locator("canvas.minimap").is_hidden()
    # Hidden, it costs nothing: pans do not redraw it.
    n = page.evaluate("""async () => { const before = cascade.minimap.redraws;
        cascade.editor.graph.view.offset = [7, 7]; cascade.editor.view.applyTransform();
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        return cascade.minimap.redraws - before; }""")
    assert n == 0
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("canvas.minimap").is_hidden()  # remembered
    page.locator("#minimap-btn").click()
    assert page.locator("canvas.minimap").is_visible()
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_view_outline_stays_on_the_map_when_the_view_is_away_from_the_graph(server, browser):  # noqa: F811
    """The map spans the graph and the part in view: panned far off (or zoomed out past the graph), the outline
    still lies on the map instead of off its edge; a press in the map keeps its frame while it moves the view."""
    page = open_editor(browser, server["base"])
    page.wait_for_selector(".node")
    for offset, scale in (([-20000, -15000], 1), ([700, 400], 0.2)):
        page.evaluate("([o, s]) => { const v = cascade.editor.graph.view; v.offset = o; v.scale = s;"
                      " cascade.editor.view.applyTransform(); cascade.editor.emit('viewchange'); }", [offset, scale])
        page.evaluate(FRAMES)
        x0, y0, x1, y1 = page.evaluate("""() => { const m = cascade.minimap, f = m.frame, r = cascade.editor.root;
            const s = cascade.editor.graph.view.scale, o = cascade.editor.graph.view.offset;
            const g = [-o[0] / s, -o[1] / s, (r.clientWidth - o[0]) / s, (r.clientHeight - o[1]) / s];
            return [f.ox + g[0] * f.scale, f.oy + g[1] * f.scale, f.ox + g[2] * f.scale, f.oy + g[3] * f.scale]; }""")
        w, h = page.evaluate("() => [cascade.minimap.canvas.width / devicePixelRatio, cascade.minimap.canvas.height / devicePixelRatio]")
        assert -1 <= x0 < x1 <= w + 1 and -1 <= y0 < y1 <= h + 1, (offset, scale, (x0, y0, x1, y1), (w, h))
    # While the map is pressed, its frame does not change under the pointer.
    box = page.locator("canvas.minimap").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    before = page.evaluate("() => ({...cascade.minimap.frame})")
    page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] - 20, steps=5)
    page.evaluate(FRAMES)
    assert page.evaluate("() => ({...cascade.minimap.frame})") == before
    page.mouse.up()
