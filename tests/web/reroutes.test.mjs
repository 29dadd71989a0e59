// Unit tests of the reroute model (web/editor/reroutes.js): insertion, chains, fan-out, removal and
// the document form (run with `node --test tests/web/`).
import test from "node:test";
import assert from "node:assert/strict";
import { srcSink } from "./src_sink.mjs";
import { fragment, pasteFragment } from "../../web/editor/convert.js";
import { addReroute, connectFrom, linkPath, removeReroute } from "../../web/editor/reroutes.js";

const graph = srcSink;
const FROM = [0, 0], TO = [400, 0];

test("a point is inserted on the nearest segment, so points chain in order", () => {
  const g = graph();
  const a = addReroute(g, "2", "x", [300, 10], FROM, TO);
  const b = addReroute(g, "2", "x", [100, 10], FROM, TO); // between the source and a
  const c = addReroute(g, "2", "x", [350, 0], FROM, TO); // between a and the input
  assert.deepEqual(linkPath(g, "2", "x"), [b, a, c]);
  const doc = g.toDocument();
  assert.equal(doc.nodes["2"].ui.link_reroutes.x, c);
  assert.deepEqual(doc.ui.reroutes.map((r) => [r.id, r.parent]).sort(), [[a, b], [b, undefined], [c, a]].sort());
  assert.deepEqual(doc.nodes["2"].inputs.x, ["1", 0]); // the link itself is unchanged
});

test("removing a point keeps the link and the other points", () => {
  const g = graph();
  const a = addReroute(g, "2", "x", [100, 0], FROM, TO);
  const b = addReroute(g, "2", "x", [300, 0], FROM, TO);
  removeReroute(g, b);
  assert.deepEqual(linkPath(g, "2", "x"), [a]);
  removeReroute(g, a);
  const doc = g.toDocument();
  assert.deepEqual(doc.nodes["2"].inputs.x, ["1", 0]);
  assert.equal(doc.ui.reroutes, undefined);
  assert.equal(doc.nodes["2"].ui.link_reroutes, undefined);
});

test("fan-out: a second input fed through a point shares its upstream chain", () => {
  const g = graph();
  const a = addReroute(g, "2", "x", [100, 0], FROM, TO);
  const b = addReroute(g, "2", "x", [300, 0], FROM, TO);
  assert.equal(connectFrom(g, a, "2", "y"), true);
  assert.deepEqual(g.nodes.get("2").links.y, ["1", 0]);
  assert.deepEqual(linkPath(g, "2", "y"), [a]);
  assert.deepEqual(linkPath(g, "2", "x"), [a, b]);
  // a point added upstream of the shared one is on both links
  const c = addReroute(g, "2", "y", [50, 0], FROM, TO);
  assert.deepEqual(linkPath(g, "2", "x"), [c, a, b]);
  assert.deepEqual(linkPath(g, "2", "y"), [c, a]);
  assert.equal(connectFrom(g, "nope", "2", "y"), false); // no link passes an unknown point
});

test("relinking an input drops its points; a deleted source leaves no points in the document", () => {
  const g = graph();
  addReroute(g, "2", "x", [100, 0], FROM, TO);
  g.addNode("Src", [0, 300]); // 3
  g.connect("3", 0, "2", "x");
  assert.deepEqual(linkPath(g, "2", "x"), []);
  const h = graph();
  addReroute(h, "2", "x", [100, 0], FROM, TO);
  h.removeNode("1");
  const doc = h.toDocument();
  assert.equal(doc.ui.reroutes, undefined);
  assert.equal(doc.nodes["2"].ui.link_reroutes, undefined);
});

test("a document's points load back, bad entries and parent cycles tolerated", () => {
  const g = graph();
  g.load({ version: 1, nodes: {
    1: { class_type: "Src", inputs: {}, ui: { pos: [0, 0] } },
    2: { class_type: "Sink", inputs: { x: ["1", 0] }, ui: { pos: [400, 0], link_reroutes: { x: "p2" } } } },
  ui: { reroutes: [{ id: "p1", pos: [10, 20], parent: "p2" }, { id: "p2", pos: ["a", 5], parent: "p1" }, null, { pos: [1, 1] }] } });
  assert.deepEqual(linkPath(g, "2", "x"), ["p1", "p2"]);
  assert.deepEqual(g.reroutes.find((r) => r.id === "p2").pos, [0, 5]);
  assert.equal(g.toDocument().ui.reroutes.length, 2);
});

test("a pasted copy does not run its links through the original's points", () => {
  const g = graph();
  const a = addReroute(g, "2", "x", [100, 0], FROM, TO);
  const added = pasteFragment(g, fragment(g, ["1", "2"]), [0, 500]);
  const [src, dst] = added.nodes;
  assert.deepEqual(g.nodes.get(dst).links.x, [src, 0]);
  assert.deepEqual(linkPath(g, dst, "x"), []);
  assert.deepEqual(linkPath(g, "2", "x"), [a]);
});
