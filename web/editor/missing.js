// @ts-check
/**
 * Stand-in definitions for node classes the server does not offer ("missing classes"), so such a
 * node keeps sockets and its links survive instead of collapsing into a socket-less card. The
 * sockets come from the file the node was read from (`ui.comfy.inputs/outputs`, written by
 * POST /workflow/convert for ComfyUI workflows), then from the links that touch it. Pure.
 */

/** @typedef {import("./graph.js").InputDef} InputDef */
/** @typedef {import("./graph.js").OutputDef} OutputDef */
/** @typedef {import("./graph.js").NodeDef} NodeDef */
/** @typedef {import("./graph.js").GNode} GNode */

/** @param {string} name @param {string} type @returns {InputDef} */
function socketInput(name, type) {
  return { name, type, kind: "socket", optional: true, opts: {}, choices: null, widget: false };
}

/** `[{name, type}]` from loose JSON, skipping entries without a usable name. @returns {{name: string, type: string}[]} */
function slots(/** @type {any} */ raw) {
  if (!Array.isArray(raw)) return [];
  return raw.filter((s) => s && typeof s === "object" && typeof s.name === "string" && s.name)
    .map((s) => ({ name: s.name, type: typeof s.type === "string" && s.type ? s.type : "*" }));
}

/**
 * The definition a missing-class node is drawn and linked with: inputs are the file's input
 * sockets plus any other linked input name (type "*"); outputs are the file's output sockets,
 * padded with "*" outputs up to the highest slot another node reads from it.
 * @param {GNode} node @param {Iterable<GNode>} nodes every node of the graph (to find readers)
 * @returns {NodeDef & {missing: true}}
 */
export function missingDef(node, nodes) {
  const comfy = (node.ui && node.ui.comfy) || {};
  const inputs = slots(comfy.inputs).map((s) => socketInput(s.name, s.type));
  for (const name of Object.keys(node.links)) if (!inputs.some((i) => i.name === name)) inputs.push(socketInput(name, "*"));
  /** @type {OutputDef[]} */
  const outputs = slots(comfy.outputs);
  let highest = outputs.length - 1;
  for (const n of nodes) for (const [src, index] of Object.values(n.links)) if (src === node.id) highest = Math.max(highest, index);
  for (let i = outputs.length; i <= highest && i < 64; i++) outputs.push({ name: `output ${i}`, type: "*" });
  return {
    name: node.type, displayName: node.type, category: "", inputs, outputs, outputNode: false, missing: true,
    description: "missing class: the server has no node of this type; queueing this workflow fails until it does",
  };
}

/**
 * The read-only facts a missing node still carries, as `[label, value]` rows: its literal inputs,
 * then ComfyUI's positional widget values (names unknown without the class).
 * @param {GNode} node @returns {[string, string][]}
 */
export function missingValues(node) {
  /** @type {[string, string][]} */
  const rows = Object.entries(node.values).map(([k, v]) => [k, short(v)]);
  const widgets = node.ui && node.ui.comfy && node.ui.comfy.widgets_values;
  if (Array.isArray(widgets)) widgets.forEach((v, i) => rows.push([`#${i + 1}`, short(v)]));
  else if (widgets && typeof widgets === "object") for (const [k, v] of Object.entries(widgets)) rows.push([k, short(v)]);
  return rows;
}

/** A value shown in one line. */
function short(/** @type {any} */ v) {
  const s = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 79)}…` : s;
}
