// Unit tests of the editor's pure graph model (run with `node --test tests/web/`).
import test from "node:test";
import assert from "node:assert/strict";
import { Graph, parseObjectInfo, typesCompatible, isSeedInput } from "../../web/editor/graph.js";
import { fragment, pasteFragment, compatibleNodes, toDocument, fromApiPrompt, isApiPrompt } from "../../web/editor/convert.js";

const INFO = {
  TextEncode: {
    input: { required: { encoder: ["TEXT_ENCODER"], text: ["STRING", { multiline: true, default: "a cat" }] } },
    input_order: { required: ["encoder", "text"] },
    output: ["CONDITIONING"], output_name: ["conditioning"], name: "TextEncode", display_name: "Text Encode",
    category: "conditioning", output_node: false,
  },
  Loader: {
    input: { required: { file: [["a.safetensors", "b.safetensors"], {}] } },
    output: ["TEXT_ENCODER"], name: "Loader", category: "loaders",
  },
  Sampler: {
    input: {
      required: {
        positive: ["CONDITIONING"],
        seed: ["INT", { default: 7, min: 0, max: 100, control_after_generate: true }],
        sampler: ["COMBO", { options: ["ddpm", "euler"], default: "euler" }],
        cfg: ["FLOAT", { default: 4.0, min: 0, max: 20, step: 0.1 }],
      },
      optional: { shift: ["FLOAT", { default: 2.0 }] },
    },
    input_order: { required: ["positive", "seed", "sampler", "cfg"], optional: ["shift"] },
    output: ["STAGE_C_LATENT"], name: "Sampler", display_name: "Stage C Sampler", category: "sampling",
  },
  Save: { input: { required: { latent: ["STAGE_C_LATENT"] } }, output: [], name: "Save", output_node: true },
};

const defs = parseObjectInfo(INFO);

function chain() {
  const g = new Graph(defs);
  const a = g.addNode("Loader", [0, 0]);
  const b = g.addNode("TextEncode", [300, 0]);
  const c = g.addNode("Sampler", [600, 0]);
  g.connect(a.id, 0, b.id, "encoder");
  g.connect(b.id, 0, c.id, "positive");
  return { g, a, b, c };
}

test("parseObjectInfo reads inputs in order with widget kinds and combos", () => {
  const s = defs.Sampler;
  assert.deepEqual(s.inputs.map((i) => [i.name, i.kind]), [
    ["positive", "socket"], ["seed", "INT"], ["sampler", "COMBO"], ["cfg", "FLOAT"], ["shift", "FLOAT"],
  ]);
  assert.deepEqual(s.inputs[2].choices, ["ddpm", "euler"]);
  assert.deepEqual(defs.Loader.inputs[0].choices, ["a.safetensors", "b.safetensors"]);
  assert.equal(defs.Loader.inputs[0].type, "COMBO");
  assert.equal(s.inputs[4].optional, true);
  assert.ok(isSeedInput(s.inputs[1]));
  assert.equal(defs.TextEncode.outputs[0].name, "conditioning");
  assert.equal(defs.Loader.displayName, "Loader");
  assert.equal(defs.Save.outputNode, true);
});

test("typesCompatible handles exact, any and unions", () => {
  assert.ok(typesCompatible("IMAGE", "IMAGE"));
  assert.ok(!typesCompatible("CONDITIONING", "STAGE_C_LATENT"));
  assert.ok(typesCompatible("*", "IMAGE"));
  assert.ok(typesCompatible("IMAGE", "MASK, IMAGE"));
});

test("addNode fills widget defaults", () => {
  const g = new Graph(defs);
  const n = g.addNode("Sampler", [1, 2]);
  assert.equal(n.id, "1");
  assert.deepEqual(n.values, { seed: 7, sampler: "euler", cfg: 4.0, shift: 2.0 });
  assert.equal(n.seedControl, "randomize");
  assert.equal(g.addNode("Save").id, "2");
});

test("connect refuses wrong types and cycles, replaces existing links", () => {
  const { g, a, b, c } = chain();
  assert.equal(g.canConnect(b.id, 0, c.id, "seed").ok, false);
  assert.match(g.canConnect(a.id, 0, c.id, "positive").reason, /TEXT_ENCODER cannot connect to CONDITIONING/);
  assert.throws(() => g.connect(c.id, 0, b.id, "encoder"));
  const b2 = g.addNode("TextEncode");
  g.connect(a.id, 0, b2.id, "encoder");
  g.connect(b2.id, 0, c.id, "positive");
  assert.deepEqual(c.links.positive, [b2.id, 0]);
  assert.equal(g.linkList().length, 3);
});

test("linking a widget input then unlinking restores its literal", () => {
  const g = new Graph(parseObjectInfo({ ...INFO, Num: { input: {}, output: ["INT"], name: "Num" } }));
  const s = g.addNode("Sampler");
  const num = g.addNode("Num");
  g.setValue(s.id, "seed", 42);
  g.connect(num.id, 0, s.id, "seed");
  assert.deepEqual(g.toDocument().nodes[s.id].inputs.seed, [num.id, 0]);
  g.disconnect(s.id, "seed");
  assert.equal(g.toDocument().nodes[s.id].inputs.seed, 42);
});

test("removeNode drops links that read from it", () => {
  const { g, b, c } = chain();
  g.removeNode(b.id);
  assert.deepEqual(c.links, {});
  assert.equal(g.linkList().length, 1 - 1);
});

test("document round trip keeps ids, links, ui and notes; stripping ui gives the API prompt", () => {
  const { g, c } = chain();
  c.title = "My sampler";
  g.addNote([5, 6], "hello");
  g.view = { offset: [10, 20], scale: 0.5 };
  const doc = g.toDocument();
  assert.equal(doc.version, 1);
  assert.deepEqual(doc.nodes[c.id].ui, { pos: [600, 0], title: "My sampler", seed_control: "randomize" });
  assert.deepEqual(doc.ui.notes[0], { id: "note1", pos: [5, 6], size: [260, 120], text: "hello" });
  const again = new Graph(defs).load(JSON.parse(JSON.stringify(doc))).toDocument();
  assert.deepEqual(again, doc);
  const api = g.toApiPrompt();
  assert.deepEqual(Object.keys(api), Object.keys(doc.nodes));
  assert.deepEqual(api[c.id], { class_type: "Sampler", inputs: doc.nodes[c.id].inputs, _meta: { title: "My sampler" } });
  // Untitled nodes carry their class's display name, else the class name.
  assert.deepEqual(Object.values(api).map((e) => e._meta.title), ["Loader", "Text Encode", "My sampler"]);
  assert.ok(!JSON.stringify(api).includes("note1"));
});

test("unknown classes survive a load/save", () => {
  const doc = { version: 1, nodes: { "5": { class_type: "Gone", inputs: { x: 1, y: ["6", 0] }, ui: { pos: [1, 1] } } }, ui: {} };
  const out = new Graph(defs).load(doc).toDocument();
  assert.deepEqual(out.nodes["5"].inputs, { x: 1, y: ["6", 0] });
});

test("fragment and paste re-id nodes and keep only internal links", () => {
  const { g, a, b, c } = chain();
  const frag = JSON.parse(JSON.stringify(fragment(g, [b.id, c.id])));
  assert.deepEqual(Object.keys(frag.nodes), [b.id, c.id]);
  assert.equal(frag.nodes[b.id].inputs.encoder, undefined);
  const res = pasteFragment(g, frag, [10, 10]);
  assert.deepEqual(res.nodes, ["4", "5"]);
  assert.deepEqual(g.nodes.get("5").links.positive, ["4", 0]);
  assert.deepEqual(g.nodes.get("4").pos, [310, 10]);
  assert.equal(g.nodes.size, 5);
  assert.ok(a);
});

test("compatibleNodes lists classes with a matching socket and the slot", () => {
  const ins = compatibleNodes(defs, "CONDITIONING", "in").map((r) => [r.def.name, r.slot]);
  assert.deepEqual(ins, [["Sampler", "positive"]]);
  const outs = compatibleNodes(defs, "TEXT_ENCODER", "out").map((r) => [r.def.name, r.slot]);
  assert.deepEqual(outs, [["Loader", 0]]);
});

test("an API prompt is rebuilt as a document with layered positions", () => {
  const { g } = chain();
  const api = g.toApiPrompt();
  assert.ok(isApiPrompt(api));
  const doc = toDocument(api);
  assert.deepEqual(Object.keys(doc.nodes).sort(), ["1", "2", "3"]);
  const xs = ["1", "2", "3"].map((id) => doc.nodes[id].ui.pos[0]);
  assert.ok(xs[0] < xs[1] && xs[1] < xs[2]);
  assert.deepEqual(new Graph(defs).load(doc).toApiPrompt(), api);
  assert.equal(toDocument({ hello: 1 }), null);
  assert.equal(fromApiPrompt({ "1": { class_type: "Save", inputs: {}, _meta: { title: "Out" } } }).nodes["1"].ui.title, "Out");
});

test("toApiPrompt leaves bypassed and muted nodes out as the server does", () => {
  const { g, a, b, c } = chain();
  b.ui = { mode: "bypass" }; // its CONDITIONING output has no CONDITIONING input to pass on
  let api = g.toApiPrompt();
  assert.ok(!(b.id in api) && a.id in api);
  assert.ok(!("positive" in api[c.id].inputs));
  assert.deepEqual(api[c.id]._meta.left_out, { positive: `node ${b.id} is bypassed and has no linked CONDITIONING input to pass on` });
  b.ui = { mode: "mute" };
  api = g.toApiPrompt();
  assert.deepEqual(api[c.id]._meta.left_out, { positive: `node ${b.id} is muted` });
  delete b.ui;
  assert.deepEqual(g.toApiPrompt()[c.id].inputs.positive, [b.id, 0]);
  assert.equal(g.toApiPrompt()[c.id]._meta.left_out, undefined);
});
