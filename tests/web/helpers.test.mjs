// Unit tests of the editor's DOM-free helpers: search ranking, seeds, undo stack, error mapping,
// PNG text chunks, preview frames and history entries (run with `node --test tests/web/`).
import test from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { fuzzyScore, rank } from "../../web/editor/search.js";
import { clampNumber, nextSeed } from "../../web/editor/widgets.js";
import { History } from "../../web/editor/history.js";
import { errorsByNode } from "../../web/run.js";
import { readPngText } from "../../web/png.js";
import { parsePreviewFrame } from "../../web/api.js";
import { outcome, entryDocument } from "../../web/panels/history.js";

const def = (name, displayName, category) => ({ def: { name, displayName, category, description: "", inputs: [], outputs: [], outputNode: false } });

test("fuzzy search ranks substring, then in-order letters; misses are dropped", () => {
  assert.ok(fuzzyScore("samp", "Stage C Sampler") > fuzzyScore("scs", "Stage C Sampler"));
  assert.equal(fuzzyScore("xyz", "Stage C Sampler"), -1);
  const cands = [def("StageCSampler", "Stage C Sampler", "sampling"), def("LoadStageC", "Load Stage C", "loaders"),
    def("SaveImage", "Save Image", "image")];
  assert.deepEqual(rank(cands, "stage c samp").map((c) => c.def.name), ["StageCSampler"]);
  assert.deepEqual(rank(cands, "loaders").map((c) => c.def.name), ["LoadStageC"]); // by category
  assert.equal(rank(cands, "").length, 3);
});

test("seed modes and number clamping follow the input's options", () => {
  const seed = { name: "seed", kind: "INT", type: "INT", optional: false, widget: true, choices: null, opts: { min: 0, max: 10 } };
  assert.equal(nextSeed("fixed", 7, seed), 7);
  assert.equal(nextSeed("increment", 7, seed), 8);
  assert.equal(nextSeed("increment", 10, seed), 0); // wraps at max
  assert.equal(nextSeed("randomize", 7, seed, () => 0.55), 5);
  assert.equal(clampNumber(seed, 12.4), 10);
  assert.equal(clampNumber(seed, 3.6), 4);
  assert.equal(clampNumber({ ...seed, kind: "FLOAT" }, 3.6), 3.6);
});

test("history undoes and redoes snapshots and drops the redo branch on a new edit", () => {
  const h = new History();
  h.reset({ a: 1 });
  assert.equal(h.push({ a: 1 }), false); // no change, no entry
  h.push({ a: 2 });
  h.push({ a: 3 });
  assert.deepEqual(h.undo(), { a: 2 });
  assert.deepEqual(h.undo(), { a: 1 });
  assert.equal(h.undo(), null);
  assert.deepEqual(h.redo(), { a: 2 });
  h.push({ a: 9 });
  assert.equal(h.redo(), null);
  assert.deepEqual(h.undo(), { a: 2 });
});

test("a replacement step carries its views: undo returns the view before, redo the view after", () => {
  const h = new History();
  h.reset({ a: 1 });
  h.push({ a: 2 });
  h.push({ b: 1 }, { before: { scale: 1 }, after: { scale: 2 } });
  assert.deepEqual(h.undo(), { a: 2 });
  assert.deepEqual(h.lastView, { scale: 1 });
  assert.deepEqual(h.undo(), { a: 1 });
  assert.equal(h.lastView, null); // an ordinary edit keeps the current view
  h.redo();
  assert.deepEqual(h.redo(), { b: 1 });
  assert.deepEqual(h.lastView, { scale: 2 });
  h.undo();
  h.push({ c: 1 }); // the redo branch and its views are dropped together
  assert.equal(h.views.length, h.stack.length);
  assert.equal(h.redo(), null);
});

test("node_errors become per-node messages keyed by input", () => {
  const out = errorsByNode({ "2": { errors: [{ type: "value_not_in_list", message: "Value not in list", details: "file: 'x' not in [...]",
    extra_info: { input_name: "file" } }, { type: "custom", message: "Bad", details: "", extra_info: {} }], class_type: "LoadStageC" } });
  assert.deepEqual(out["2"].inputs, { file: "Value not in list: file: 'x' not in [...]" });
  assert.equal(out["2"].message, "Value not in list: file: 'x' not in [...]\nBad");
});

/** A PNG byte string with the given chunks (CRCs are not checked by the reader). */
function png(chunks) {
  const parts = [Buffer.from([137, 80, 78, 71, 13, 10, 26, 10])];
  for (const [type, data] of [...chunks, ["IEND", Buffer.alloc(0)]]) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    parts.push(len, Buffer.from(type, "latin1"), data, Buffer.alloc(4));
  }
  const b = Buffer.concat(parts);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
}

test("PNG text chunks: tEXt, compressed iTXt and zTXt", async () => {
  const itxt = Buffer.concat([Buffer.from("workflow\0\x01\x00en\0\0", "latin1"), deflateSync(Buffer.from('{"version":1,"é":1}'))]);
  const ztxt = Buffer.concat([Buffer.from("note\0\0", "latin1"), deflateSync(Buffer.from("zipped"))]);
  const text = await readPngText(png([["tEXt", Buffer.from('prompt\0{"1":{}}', "latin1")], ["iTXt", itxt], ["zTXt", ztxt]]));
  assert.deepEqual(text, { prompt: '{"1":{}}', workflow: '{"version":1,"é":1}', note: "zipped" });
  await assert.rejects(readPngText(new ArrayBuffer(16)), /not a PNG/);
});

test("preview frames: type 4 with metadata, legacy type 1, others ignored", async () => {
  const meta = Buffer.from(JSON.stringify({ node_id: "6", image_type: "image/png" }));
  const head = Buffer.alloc(8);
  head.writeUInt32BE(4, 0);
  head.writeUInt32BE(meta.length, 4);
  const b = Buffer.concat([head, meta, Buffer.from("IMG")]);
  const f = parsePreviewFrame(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  assert.equal(f.meta.node_id, "6");
  assert.equal(f.blob.type, "image/png");
  assert.equal(await f.blob.text(), "IMG");
  const legacy = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 9, 9]);
  const g = parsePreviewFrame(legacy.buffer.slice(legacy.byteOffset, legacy.byteOffset + legacy.length));
  assert.equal(g.blob.type, "image/jpeg");
  assert.equal(g.blob.size, 2);
  assert.equal(parsePreviewFrame(new Uint8Array([0, 0, 0, 3, 0, 0, 0, 0]).buffer), null);
});

test("history entries: outcome and the workflow to reopen", () => {
  const doc = { version: 1, nodes: { "1": { class_type: "A", inputs: {}, ui: { pos: [0, 0] } } }, ui: { notes: [] } };
  const api = { "1": { class_type: "A", inputs: { x: 1 } } };
  const entry = (extra, last) => ({ prompt: [1, "p", api, extra, ["1"]], outputs: {}, status: { status_str: last === "execution_success" ? "success" : "error", messages: [["execution_start", {}], [last, {}]] } });
  assert.equal(outcome(entry({}, "execution_success")), "done");
  assert.equal(outcome(entry({}, "execution_interrupted")), "interrupted");
  assert.equal(outcome(entry({}, "execution_error")), "failed");
  assert.deepEqual(entryDocument(entry({ extra_pnginfo: { workflow: doc } }, "execution_success")), doc);
  assert.deepEqual(entryDocument(entry({}, "execution_success")).nodes["1"].inputs, { x: 1 }); // rebuilt from the prompt
});
