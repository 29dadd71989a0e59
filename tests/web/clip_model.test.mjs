// Unit tests of what a copy carries besides nodes (web/editor/clip_model.js): groups selected with
// their nodes, the reroute points of the copied links, and a paste giving them fresh ids and moving
// them with the nodes (run with `node --test tests/web/`).
import test from "node:test";
import assert from "node:assert/strict";
import { srcSink } from "./src_sink.mjs";
import { fragment, pasteFragment } from "../../web/editor/convert.js";
import { addReroute, linkPath, rerouteOf } from "../../web/editor/reroutes.js";
import { addExtras, cleanFragment, copySet, fragmentCorner, pasteAt, pasteExtras } from "../../web/editor/clip_model.js";


/** Src 1 → Sink 2.x through points a, b; Src 3 (outside the copy) → Sink 2.y through point c. */
function graph() {
  const g = srcSink();
  g.addNode("Src", [0, 300]); // 3
  g.connect("3", 0, "2", "y");
  const a = addReroute(g, "2", "x", [100, 20], [0, 0], [400, 0]);
  const b = addReroute(g, "2", "x", [300, 20], [0, 0], [400, 0]);
  const c = addReroute(g, "2", "y", [200, 200], [0, 300], [400, 0]);
  return { g, a, b, c };
}

/** Copy `ids` with `groups`, through JSON as the clipboard carries it. */
function copied(g, ids, groups = []) {
  return JSON.parse(JSON.stringify(addExtras(g, fragment(g, ids), groups)));
}

function paste(g, frag, delta, keepLinks = false) {
  const added = pasteFragment(g, frag, delta, keepLinks);
  return { ...added, ...pasteExtras(g, frag, added.remap, delta) };
}

const pos = (g, id) => rerouteOf(g, id).pos;

test("pasted links run through fresh copies of their points, moved with the nodes", () => {
  const { g, a, b } = graph();
  const frag = copied(g, ["1", "2"]);
  const { remap, points } = paste(g, frag, [0, 500]);
  const path = linkPath(g, remap["2"], "x");
  assert.equal(path.length, 2);
  assert.ok(!path.includes(a) && !path.includes(b), "the copy must not run through the original's points");
  assert.deepEqual(path.map((id) => pos(g, id)), [[100, 520], [300, 520]]);
  assert.deepEqual(linkPath(g, "2", "x"), [a, b]); // the original keeps its own
  assert.equal(points.length, 2); // the outside link into y was dropped, and so were its points
  assert.equal(linkPath(g, remap["2"], "y").length, 0);
  // Pasting again gives other points again.
  const again = paste(g, frag, [0, 530]).remap["2"];
  assert.equal(linkPath(g, again, "x").filter((id) => path.includes(id)).length, 0);
  // The saved document keeps every pasted point (each is on a link).
  assert.equal(g.toDocument().ui.reroutes.length, 3 + 2 + 2);
});

test("a link kept from outside (Ctrl+Shift+V) keeps its points too", () => {
  const { g, a, b, c } = graph();
  const { remap } = paste(g, copied(g, ["2"]), [50, 50], true);
  assert.deepEqual(g.nodes.get(remap["2"]).links, { x: ["1", 0], y: ["3", 0] });
  const [p] = linkPath(g, remap["2"], "y");
  assert.ok(p && p !== c);
  assert.deepEqual(pos(g, p), [250, 250]);
  const x = linkPath(g, remap["2"], "x");
  assert.deepEqual(x.map((id) => pos(g, id)), [[150, 70], [350, 70]]);
  assert.ok(!x.includes(a) && !x.includes(b));
});

test("a shared chain (fan-out) stays shared in the copy", () => {
  const { g, a, b } = graph();
  g.connect("1", 0, "2", "y"); // y now from 1 as well, through a
  g.nodes.get("2").ui.link_reroutes.y = a;
  const { remap } = paste(g, copied(g, ["1", "2"]), [0, 400]);
  const x = linkPath(g, remap["2"], "x"), y = linkPath(g, remap["2"], "y");
  assert.equal(x.length, 2);
  assert.deepEqual(y, [x[0]]);
  assert.ok(!x.includes(a) && !x.includes(b));
});

test("point ids a pasted whole document brings never name this graph's points", () => {
  const { g, a } = graph();
  const doc = JSON.parse(JSON.stringify(g.toDocument()));
  const { remap } = paste(g, doc, [1000, 0]);
  const path = linkPath(g, remap["2"], "x");
  assert.equal(path.length, 2);
  assert.ok(!path.includes(a));
  // A document entry naming a point the document does not have: the link gets none.
  doc.nodes["2"].ui.link_reroutes = { x: a };
  doc.ui.reroutes = [];
  const bare = paste(g, doc, [2000, 0]).remap["2"];
  assert.deepEqual(linkPath(g, bare, "x"), []);
});

test("copySet: a selected group takes what lies in it; a group counts when all its items are copied", () => {
  const groups = [
    { title: "A", bounding: [0, 0, 500, 500] },
    { title: "inner", bounding: [10, 10, 200, 200] },
    { title: "empty inner", bounding: [300, 300, 100, 100] },
    { title: "B", bounding: [1000, 0, 300, 300] },
  ];
  const items = [
    { id: "1", box: [20, 50, 100, 100] }, // in A and inner
    { id: "2", box: [250, 50, 290, 100] }, // in A only
    { id: "3", box: [1010, 50, 1100, 100] }, // in B
    { id: "4", box: [1150, 50, 1200, 100] }, // in B
    { id: "5", box: [2000, 0, 2100, 100] }, // in none
  ];
  assert.deepEqual(copySet(groups, 0, items, []), { groups: [0, 1, 2], ids: ["1", "2"] });
  assert.deepEqual(copySet(groups, -1, items, ["3", "4", "5"]), { groups: [3], ids: ["3", "4", "5"] });
  assert.deepEqual(copySet(groups, -1, items, ["3"]).groups, []); // part of B only: not B
  assert.deepEqual(copySet(groups, -1, items, ["1"]).groups, [1]); // all of inner, part of A
  assert.deepEqual(copySet(groups, 7, items, []).groups, []);
});

test("pasted groups move with the paste; the corner spans nodes, notes, groups and points", () => {
  const { g } = graph();
  g.groups.push({ title: "G", bounding: [-20, -40, 500, 100], color: "#8a8", flags: { pinned: true } });
  const frag = copied(g, ["1", "2"], [0]);
  assert.deepEqual(fragmentCorner(frag), [-20, -40]);
  assert.equal(fragmentCorner({ nodes: {}, ui: { notes: [] } }), null);
  const { groups } = paste(g, frag, [100, 200]);
  assert.deepEqual(groups, [1]);
  assert.deepEqual(g.groups[1], { title: "G", bounding: [80, 160, 500, 100], color: "#8a8", flags: { pinned: true } });
  g.groups[1].flags.pinned = false; // a copy, not the same object
  assert.equal(g.groups[0].flags.pinned, true);
});

test("pasteAt puts the corner of what it adds at the point, not that of a dropped link's points", () => {
  const { g, c } = graph();
  rerouteOf(g, c).pos = [-3000, -2000]; // the outside link into 2.y, far up-left
  const frag = copied(g, ["2"]);
  const plain = pasteAt(g, frag, [700, 300], false);
  assert.deepEqual(g.nodes.get(plain.nodes[0]).pos, [700, 300]); // its point is not pasted, so it does not count
  assert.deepEqual(plain.points, []);
  const kept = pasteAt(g, frag, [700, 300], true); // now the point comes along and is the corner
  const pts = kept.points.map((id) => pos(g, id));
  assert.equal(pts.length, 3); // a, b on 1 → x and c on 3 → y
  assert.deepEqual([Math.min(...pts.map((p) => p[0])), Math.min(...pts.map((p) => p[1]))], [700, 300]);
  assert.deepEqual(g.nodes.get(kept.nodes[0]).pos, [400 + 3700, 0 + 2300]);
});

test("cleanFragment drops what a paste cannot take, so a paste never throws half-way", () => {
  const { g } = graph();
  const frag = cleanFragment({
    version: 1,
    nodes: { 1: null, 2: { class_type: "Src", inputs: "x", ui: "bad" }, 3: { inputs: {} }, 4: [1] },
    external: [1],
    ui: { notes: [{ text: "no pos" }, "n", { pos: [5, "6"], text: null }], groups: "x", reroutes: 5 },
  });
  assert.deepEqual(Object.keys(frag.nodes), ["2"]);
  assert.deepEqual(frag.nodes["2"], { class_type: "Src", inputs: {}, ui: {} });
  assert.deepEqual(frag.ui.notes, [{ pos: [5, 6], text: "" }]);
  assert.deepEqual(frag.external, {});
  const size = g.nodes.size;
  const added = pasteAt(g, frag, [10, 10], true);
  assert.equal(g.nodes.size, size + 1);
  assert.deepEqual(g.nodes.get(added.nodes[0]).ui, undefined);
  assert.deepEqual(g.notes.map((m) => m.text), [""]);
  assert.equal(cleanFragment("text"), null);
  assert.deepEqual(cleanFragment({ nodes: [1, 2] }).nodes, {});
});
