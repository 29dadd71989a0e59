// @ts-check
/**
 * Node definitions from GET /object_info: inputs (sockets and widgets), outputs, defaults. Pure.
 */

/** @typedef {import("./graph.js").InputDef} InputDef */
/** @typedef {import("./graph.js").NodeDef} NodeDef */

export const WIDGET_KINDS = ["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"];
export const SEED_CONTROLS = ["fixed", "increment", "decrement", "randomize"];

/**
 * Turn one `[TYPE, opts]` entry of /object_info into an InputDef (legacy list combos included).
 * @param {string} name @param {any} spec @param {boolean} optional @returns {InputDef}
 */
function parseInput(name, spec, optional) {
  const [head, opts = {}] = Array.isArray(spec) ? spec : [spec, {}];
  let type = head;
  let choices = null;
  if (Array.isArray(head)) {
    type = "COMBO";
    choices = head.map(String);
  } else if (head === "COMBO") {
    choices = (opts.options || []).map(String);
  }
  const kind = WIDGET_KINDS.includes(type) && !opts.forceInput ? type : "socket";
  return { name, type, kind, optional, opts, choices, widget: kind !== "socket" };
}

/**
 * Parse the GET /object_info response into NodeDefs keyed by class name.
 * @param {Record<string, any>} info @returns {Record<string, NodeDef>}
 */
export function parseObjectInfo(info) {
  /** @type {Record<string, NodeDef>} */
  const defs = {};
  for (const [name, d] of Object.entries(info)) {
    const inputs = [];
    for (const group of ["required", "optional"]) {
      const specs = (d.input && d.input[group]) || {};
      const order = (d.input_order && d.input_order[group]) || Object.keys(specs);
      for (const key of order) if (key in specs) inputs.push(parseInput(key, specs[key], group === "optional"));
    }
    const outTypes = d.output || [];
    const outNames = d.output_name || outTypes;
    defs[name] = {
      name,
      displayName: d.display_name || name,
      category: d.category || "",
      description: d.description || "",
      inputs,
      outputs: outTypes.map((/** @type {any} */ t, /** @type {number} */ i) => ({ name: String(outNames[i] ?? t), type: String(t) })),
      outputNode: !!d.output_node,
    };
  }
  return defs;
}

/** Whether an input definition asks for seed controls (randomise/increment after queueing). */
export function isSeedInput(/** @type {InputDef} */ d) {
  return d.kind === "INT" && !!(d.opts.control_after_generate || d.opts.seed);
}

/** Default literal for a widget input. @param {InputDef} d */
export function defaultValue(d) {
  if (d.opts.default !== undefined) return d.opts.default;
  if (d.kind === "COMBO") return d.choices && d.choices.length ? d.choices[0] : "";
  if (d.kind === "INT" || d.kind === "FLOAT") return d.opts.min !== undefined ? Math.max(0, d.opts.min) : 0;
  if (d.kind === "BOOLEAN") return false;
  return d.kind === "STRING" ? "" : undefined;
}
