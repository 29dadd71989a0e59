// Pasting with links kept (Ctrl+Shift+V): the fragment remembers links from outside, and a paste
// with keepLinks relinks those whose source still exists and fits.
import test from "node:test";
import assert from "node:assert/strict";
import { Graph, parseObjectInfo } from "../../web/editor/graph.js";
import { fragment, pasteFragment } from "../../web/editor/convert.js";

const defs = parseObjectInfo({
  Loader: { input: { required: {} }, output: ["TEXT_ENCODER"], name: "Loader" },
  Other: { input: { required: {} }, output: ["IMAGE"], name: "Other" },
  Encode: { input: { required: { encoder: ["TEXT_ENCODER"] } }, output: ["CONDITIONING"], name: "Encode" },
});

test("a fragment keeps outside links apart and keepLinks relinks them to existing sources", () => {
  const g = new Graph(defs);
  const a = g.addNode("Loader");
  const b = g.addNode("Encode", [300, 0]);
  g.connect(a.id, 0, b.id, "encoder");
  const frag = JSON.parse(JSON.stringify(fragment(g, [b.id])));
  assert.equal(frag.nodes[b.id].inputs.encoder, undefined);
  assert.deepEqual(frag.external, { [b.id]: { encoder: [a.id, 0] } });
  const plain = pasteFragment(g, frag, [0, 50]).nodes[0];
  assert.deepEqual(g.nodes.get(plain).links, {});
  const kept = pasteFragment(g, frag, [0, 100], true).nodes[0];
  assert.deepEqual(g.nodes.get(kept).links, { encoder: [a.id, 0] });
});

test("keepLinks skips sources that are gone or no longer fit, and never throws", () => {
  const g = new Graph(defs);
  const b = g.addNode("Encode", [300, 0], "2");
  g.addNode("Other", [0, 0], "1"); // id 1 now gives IMAGE, not TEXT_ENCODER
  const frag = { nodes: { "2": g.nodeEntry(b) }, external: { "2": { encoder: ["1", 0], bogus: ["9", 0] }, "7": 3 } };
  const id = pasteFragment(g, frag, [0, 0], true).nodes[0];
  assert.deepEqual(g.nodes.get(id).links, {});
});
