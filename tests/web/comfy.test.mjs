// Unit tests of the editor's ComfyUI pieces: missing-class stand-ins, groups and extra ui kept,
// _meta titles, and which part of a file gets loaded (run with `node --test tests/web/`).
import test from "node:test";
import assert from "node:assert/strict";
import { Graph, parseObjectInfo } from "../../web/editor/graph.js";
import { isEditorWorkflow } from "../../web/editor/convert.js";
import { missingDef, missingValues } from "../../web/editor/missing.js";
import { loadableDocument } from "../../web/files.js";

const defs = parseObjectInfo({
  Save: { input: { required: { images: ["IMAGE"] } }, output: [], name: "Save", display_name: "Save Image", output_node: true },
});

/** A converted ComfyUI document: KSampler is missing, with its sockets from the file. */
function comfyDoc() {
  return {
    version: 1,
    nodes: {
      "3": { class_type: "KSampler", inputs: { model: ["4", 0] }, ui: { pos: [552, 293], color: "#223",
        comfy: { widgets_values: [42, "fixed", 20], inputs: [{ name: "model", type: "MODEL" }, { name: "positive", type: "CONDITIONING" }],
          outputs: [{ name: "LATENT", type: "LATENT" }] } } },
      "4": { class_type: "CheckpointLoaderSimple", inputs: {}, ui: { pos: [0, 0] } },
      "9": { class_type: "Save", inputs: { images: ["3", 0] }, ui: { pos: [900, 0], title: "Save Image" } },
    },
    ui: { notes: [{ id: "note1", pos: [1, 2], size: [200, 80], text: "hi" }], groups: [{ title: "Stage C", bounding: [-10, 5, 300, 200], color: "#b06634", font_size: 24 }] },
  };
}

test("a missing class gets its file's sockets, then sockets for links that touch it", () => {
  const g = new Graph(defs).load(comfyDoc());
  const k = g.def("3");
  assert.equal(k.missing, true);
  assert.deepEqual(k.inputs.map((i) => [i.name, i.type, i.widget]), [["model", "MODEL", false], ["positive", "CONDITIONING", false]]);
  assert.deepEqual(k.outputs, [{ name: "LATENT", type: "LATENT" }]);
  // No ui.comfy (an API prompt's unknown class): outputs up to the highest slot read, links kept.
  const ck = g.def("4");
  assert.deepEqual(ck.outputs, [{ name: "output 0", type: "*" }]);
  assert.deepEqual(g.linkList().map((l) => [l.src, l.dst, l.input, l.type]).sort(), [["3", "9", "images", "LATENT"], ["4", "3", "model", "*"]]);
  assert.deepEqual(g.missingClasses(), ["KSampler", "CheckpointLoaderSimple"]);
  // Links can be made to a missing node's sockets, by type.
  assert.equal(g.canConnect("4", 0, "3", "positive").ok, true);
  assert.deepEqual(missingValues(g.nodes.get("3")), [["#1", "42"], ["#2", "fixed"], ["#3", "20"]]);
  assert.deepEqual(missingDef({ id: "1", type: "X", values: {}, links: {}, pos: [0, 0], ui: { comfy: { inputs: "bad", outputs: [null, { name: "" }] } } }, []).inputs, []);
});

test("groups, notes and extra per-node ui survive load/save; a title equal to the display name is dropped", () => {
  const doc = comfyDoc();
  const out = new Graph(defs).load(JSON.parse(JSON.stringify(doc))).toDocument();
  assert.deepEqual(out.ui.groups, doc.ui.groups);
  assert.deepEqual(out.ui.notes, doc.ui.notes);
  assert.deepEqual(out.nodes["3"].ui, doc.nodes["3"].ui);
  assert.deepEqual(out.nodes["3"].inputs, { model: ["4", 0] });
  assert.equal(out.nodes["9"].ui.title, undefined);
  assert.equal(new Graph(defs).load({ version: 1, nodes: {}, ui: {} }).toDocument().ui.groups, undefined);
});

test("toApiPrompt gives every node a _meta.title: title, display name, class name", () => {
  const doc = comfyDoc();
  doc.nodes["4"].ui.title = "Stage C checkpoint";
  const api = new Graph(defs).load(doc).toApiPrompt();
  assert.deepEqual(Object.fromEntries(Object.entries(api).map(([id, e]) => [id, e._meta.title])),
    { "3": "KSampler", "4": "Stage C checkpoint", "9": "Save Image" });
  assert.deepEqual(api["3"], { class_type: "KSampler", inputs: { model: ["4", 0] }, _meta: { title: "KSampler" } });
});

test("loadableDocument: ours and API prompts directly, ComfyUI editor JSON through the converter", async () => {
  const calls = [];
  const convert = async (/** @type {any} */ w) => { calls.push(w); return comfyDoc(); };
  const ours = comfyDoc();
  assert.equal(await loadableDocument(ours, convert), ours);
  const api = await loadableDocument({ "1": { class_type: "Save", inputs: {} } }, convert);
  assert.deepEqual(Object.keys(api.nodes), ["1"]);
  const editor = { nodes: [{ id: 1, type: "KSampler" }], links: [], version: 0.4 };
  assert.ok(isEditorWorkflow(editor) && !isEditorWorkflow({ nodes: {} }) && !isEditorWorkflow([1]));
  assert.deepEqual(await loadableDocument(editor, convert), comfyDoc());
  assert.deepEqual(await loadableDocument({ workflow: editor }, convert), comfyDoc());
  assert.deepEqual(calls, [editor, editor]);
  assert.equal(await loadableDocument({ hello: 1 }, convert), null);
  await assert.rejects(loadableDocument(editor, async () => { throw new Error("nodes[0] must be an object"); }), /nodes\[0\]/);
});
