// Unit tests of issue 13 §3's DOM-free helpers: error summary, history facts, image parameters,
// batch count and the "decrement" seed mode (run with `node --test tests/web/`).
import test from "node:test";
import assert from "node:assert/strict";
import { errorsByNode, summariseRefusal, SUMMARY_MAX } from "../../web/errors.js";
import { entryFacts, firstImage, formatDuration } from "../../web/panels/history_row.js";
import { imageParameters, promptFromChunks } from "../../web/panels/image_params.js";
import { batchCount, MAX_BATCH } from "../../web/batch.js";
import { nextSeed } from "../../web/editor/widgets.js";
import { outputTexts } from "../../web/editor/node_text.js";

const missing = (id) => ({ class_type: "LoadStageC", errors: [
  { type: "value_not_in_list", message: "Value not in list", details: `file: 'gone_${id}.safetensors' ${"x".repeat(300)}`, extra_info: { input_name: "file" } },
  { type: "value_not_in_list", message: "Value not in list", details: `file: 'gone_${id}.safetensors' ${"x".repeat(300)}`, extra_info: { input_name: "file" } }] });

test("a refused prompt is summarised in one short line naming every failing node", () => {
  const body = { error: { message: "Prompt outputs failed validation", details: "long" }, node_errors: { 1: missing(1), 2: missing(2), 7: { errors: [{ message: "Required input is missing", details: "latent" }] } } };
  const s = summariseRefusal(body, 400);
  assert.equal(s, "Cannot queue: 3 nodes have errors (marked red) — Value not in list: #1 #2; Required input is missing: #7");
  assert.ok(summariseRefusal({ node_errors: Object.fromEntries([...Array(80)].map((_, i) => [i, missing(i)])) }, 400).length <= SUMMARY_MAX);
  assert.equal(summariseRefusal({ error: { message: "No prompt provided" } }, 400), "Cannot queue: No prompt provided");
  assert.equal(summariseRefusal(null, 502), "Cannot queue: HTTP 502");
  // The same reason twice on one node is shown once.
  assert.equal(errorsByNode({ 1: missing(1) })["1"].message.split("\n").length, 1);
});

test("history facts: start, duration, reason, first image", () => {
  const entry = { outputs: { 9: { text: ["x"] }, 8: { images: [{ filename: "a.png" }] } }, status: { messages: [
    ["execution_start", { timestamp: 1000 }], ["execution_cached", { timestamp: 1010 }],
    ["execution_error", { node_id: "9", node_type: "Explode", exception_message: "boom", timestamp: 3500 }]] } };
  assert.deepEqual(entryFacts(entry), { start: 1000, duration: 2500, reason: "Explode #9: boom" });
  assert.deepEqual(firstImage(entry), { filename: "a.png" });
  const cancelled = { status: { messages: [["execution_interrupted", { reason: "removed from the queue before it ran", timestamp: 5 }]] } };
  assert.deepEqual(entryFacts(cancelled), { start: null, duration: null, reason: "removed from the queue before it ran" });
  assert.equal(firstImage({}), null);
  assert.deepEqual([formatDuration(850), formatDuration(2440), formatDuration(185000)], ["850 ms", "2.4 s", "3 min 05 s"]);
});

test("image parameters come from the API prompt, linked inputs skipped", () => {
  const prompt = { 6: { class_type: "KSampler", inputs: { seed: 42, steps: 20, model: ["1", 0], cfg: 4 } },
    4: { class_type: "CLIPTextEncode", _meta: { title: "Positive" }, inputs: { text: "a cat", clip: ["2", 0] } },
    3: { class_type: "EmptyLatent", inputs: { width: 1024, height: 768 } } };
  assert.deepEqual(imageParameters(prompt).map((r) => `${r.kind} ${r.label}=${r.value}`), [
    "prompt Positive #4 · text=a cat", "seed KSampler #6 · seed=42", "size EmptyLatent #3 · width=1024",
    "size EmptyLatent #3 · height=768", "sampling KSampler #6 · steps=20", "sampling KSampler #6 · cfg=4"]);
  assert.equal(promptFromChunks({ prompt: "not json" }), null);
  assert.equal(promptFromChunks({ prompt: "[1]" }), null);
  assert.deepEqual(promptFromChunks({ prompt: '{"1": {}}' }), { 1: {} });
});

test("batch count is clamped; decrement wraps at the minimum; text outputs are lines", () => {
  assert.deepEqual([batchCount("3"), batchCount("0"), batchCount("abc"), batchCount(1e9)], [3, 1, 1, MAX_BATCH]);
  const seed = { opts: { min: 0, max: 10 } };
  assert.equal(nextSeed("decrement", 7, seed), 6);
  assert.equal(nextSeed("decrement", 0, seed), 10);
  assert.deepEqual(outputTexts({ text: ["48 of 48 tensors applied", { n: 1 }] }), ["48 of 48 tensors applied", '{"n":1}']);
  assert.equal(outputTexts({ images: [] }), null);
});
