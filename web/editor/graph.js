// @ts-check
/**
 * Pure graph model of the editor: node definitions parsed from GET /object_info, nodes with literal
 * values and typed links, and conversion to/from the one workflow document. No DOM here, so the
 * whole model runs under `node --test`.
 */

/** @typedef {{name: string, type: string, kind: string, optional: boolean, opts: Record<string, any>, choices: string[] | null, widget: boolean}} InputDef */
/** @typedef {{name: string, type: string}} OutputDef */
/** @typedef {{name: string, displayName: string, category: string, description: string, inputs: InputDef[], outputs: OutputDef[], outputNode: boolean}} NodeDef */
/** @typedef {[string, number]} Link */
/** @typedef {{id: string, type: string, values: Record<string, any>, links: Record<string, Link>, pos: [number, number], size?: [number, number], title?: string, seedControl?: string}} GNode */
/** @typedef {{id: string, pos: [number, number], size: [number, number], text: string}} Note */

/** A finite [x, y] pair from loose JSON (missing parts fall back to `dflt`). @returns {[number, number]} */
export function pair(/** @type {any} */ v, /** @type {[number, number]} */ dflt = [0, 0]) {
  const a = Array.isArray(v) ? v : [];
  const x = Number(a[0]), y = Number(a[1]);
  return [Number.isFinite(x) ? x : dflt[0], Number.isFinite(y) ? y : dflt[1]];
}

export const WIDGET_KINDS = ["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"];
export const SEED_CONTROLS = ["fixed", "increment", "randomize"];

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

/**
 * Whether an output of type `out` may feed an input of type `inp` ("*" and comma unions allowed).
 * @param {string} out @param {string} inp
 */
export function typesCompatible(out, inp) {
  if (out === "*" || inp === "*") return true;
  const a = String(out).split(",").map((s) => s.trim());
  const b = String(inp).split(",").map((s) => s.trim());
  return a.some((t) => b.includes(t));
}

/** True for the two-element `[source_id, output_index]` shape that marks a link in a document. */
export function isLink(/** @type {any} */ v) {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && Number.isInteger(v[1]);
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

export class Graph {
  /** @param {Record<string, NodeDef>} defs */
  constructor(defs) {
    this.defs = defs;
    /** @type {Map<string, GNode>} */
    this.nodes = new Map();
    /** @type {Note[]} */
    this.notes = [];
    this.view = { offset: /** @type {[number, number]} */ ([0, 0]), scale: 1 };
  }

  /** Smallest unused numeric id (ids are strings of digits, as in ComfyUI). */
  nextId() {
    let max = 0;
    for (const id of this.nodes.keys()) if (/^\d+$/.test(id)) max = Math.max(max, Number(id));
    return String(max + 1);
  }

  /** @param {string} id */
  def(id) {
    const n = this.nodes.get(id);
    return n ? this.defs[n.type] : undefined;
  }

  /** Add a node of class `type` with default widget values. @param {string} type @param {[number, number]} pos */
  addNode(type, pos = [0, 0], id = this.nextId()) {
    const d = this.defs[type];
    if (!d) throw new Error(`unknown node type ${type}`);
    /** @type {GNode} */
    const node = { id, type, values: {}, links: {}, pos: [Math.round(pos[0]), Math.round(pos[1])] };
    for (const inp of d.inputs) if (inp.widget) node.values[inp.name] = defaultValue(inp);
    if (d.inputs.some(isSeedInput)) node.seedControl = "randomize";
    this.nodes.set(id, node);
    return node;
  }

  /** Remove a node and every link that reads from it. @param {string} id */
  removeNode(id) {
    this.nodes.delete(id);
    for (const n of this.nodes.values())
      for (const [name, l] of Object.entries(n.links)) if (l[0] === id) delete n.links[name];
  }

  /** Type of a node's output slot, or null. @param {string} id @param {number} index */
  outputType(id, index) {
    const d = this.def(id);
    return d && d.outputs[index] ? d.outputs[index].type : null;
  }

  /** @param {string} id @param {string} name */
  inputDef(id, name) {
    const d = this.def(id);
    return d ? d.inputs.find((i) => i.name === name) : undefined;
  }

  /** True if `to` is reachable downstream from `from` (so linking to → from would close a cycle). */
  reaches(/** @type {string} */ from, /** @type {string} */ to) {
    const seen = new Set();
    const stack = [from];
    while (stack.length) {
      const cur = /** @type {string} */ (stack.pop());
      if (cur === to) return true;
      if (seen.has(cur)) continue;
      seen.add(cur);
      for (const n of this.nodes.values()) if (Object.values(n.links).some((l) => l[0] === cur)) stack.push(n.id);
    }
    return false;
  }

  /**
   * Explain whether output `out` of `src` may link into input `name` of `dst`.
   * @param {string} src @param {number} out @param {string} dst @param {string} name
   * @returns {{ok: boolean, reason: string}}
   */
  canConnect(src, out, dst, name) {
    const ot = this.outputType(src, out);
    const inp = this.inputDef(dst, name);
    if (ot === null || !inp) return { ok: false, reason: "no such socket" };
    if (src === dst || this.reaches(dst, src)) return { ok: false, reason: "that link would make a cycle" };
    if (!typesCompatible(ot, inp.type)) return { ok: false, reason: `${ot} cannot connect to ${inp.type}` };
    return { ok: true, reason: "" };
  }

  /** Link `src`:`out` into `dst`.`name`, replacing any earlier link there. Throws when refused. */
  connect(/** @type {string} */ src, /** @type {number} */ out, /** @type {string} */ dst, /** @type {string} */ name) {
    const r = this.canConnect(src, out, dst, name);
    if (!r.ok) throw new Error(r.reason);
    /** @type {GNode} */ (this.nodes.get(dst)).links[name] = [src, out];
  }

  /** Remove the link into `dst`.`name`; a widget input falls back to its literal value. */
  disconnect(/** @type {string} */ dst, /** @type {string} */ name) {
    const n = this.nodes.get(dst);
    if (n) delete n.links[name];
  }

  /** All links as flat records, for drawing. */
  linkList() {
    const out = [];
    for (const n of this.nodes.values())
      for (const [name, [src, index]] of Object.entries(n.links))
        out.push({ src, index, dst: n.id, input: name, type: this.outputType(src, index) || "*" });
    return out;
  }

  /** Set a widget literal. @param {string} id @param {string} name @param {any} value */
  setValue(id, name, value) {
    const n = this.nodes.get(id);
    if (n) n.values[name] = value;
  }

  /** Serialise one node to its document entry. @param {GNode} n */
  nodeEntry(n) {
    /** @type {Record<string, any>} */
    const inputs = { ...n.values };
    for (const [name, l] of Object.entries(n.links)) inputs[name] = [l[0], l[1]];
    /** @type {Record<string, any>} */
    const ui = { pos: [...n.pos] };
    if (n.size) ui.size = [...n.size];
    if (n.title) ui.title = n.title;
    if (n.seedControl) ui.seed_control = n.seedControl;
    return { class_type: n.type, inputs, ui };
  }

  /** The workflow document (see CONTRACTS.md): nodes keyed by id plus top-level ui. */
  toDocument() {
    /** @type {Record<string, any>} */
    const nodes = {};
    for (const n of this.nodes.values()) nodes[n.id] = this.nodeEntry(n);
    const notes = this.notes.map((m) => ({ id: m.id, pos: [...m.pos], size: [...m.size], text: m.text }));
    return { version: 1, nodes, ui: { view: { offset: [...this.view.offset], scale: this.view.scale }, notes } };
  }

  /** Replace the graph's content with a document's (unknown classes are kept as-is). @param {any} doc */
  load(doc) {
    this.nodes.clear();
    for (const [id, e] of Object.entries(doc.nodes || {})) this.nodes.set(String(id), this.nodeFromEntry(String(id), e));
    const ui = doc.ui || {};
    this.notes = (ui.notes || []).map((/** @type {any} */ m, /** @type {number} */ i) => ({
      id: String(m.id ?? `note${i + 1}`), pos: pair(m.pos), size: pair(m.size, [260, 120]), text: String(m.text ?? ""),
    }));
    const v = ui.view || {};
    this.view = { offset: pair(v.offset), scale: Number(v.scale) || 1 };
    return this;
  }

  /** @param {string} id @param {any} e @returns {GNode} */
  nodeFromEntry(id, e) {
    const ui = e.ui || {};
    /** @type {GNode} */
    const n = { id, type: String(e.class_type), values: {}, links: {}, pos: pair(ui.pos) };
    const d = this.defs[n.type];
    if (d) for (const inp of d.inputs) if (inp.widget) n.values[inp.name] = defaultValue(inp);
    for (const [name, v] of Object.entries(e.inputs || {})) {
      if (isLink(v)) n.links[name] = [v[0], v[1]];
      else n.values[name] = v;
    }
    if (ui.size) n.size = pair(ui.size, [260, 0]);
    if (ui.title) n.title = String(ui.title);
    if (ui.seed_control) n.seedControl = String(ui.seed_control);
    if (!n.title && e._meta && e._meta.title && e._meta.title !== (d && d.displayName)) n.title = String(e._meta.title);
    return n;
  }

  /** The API prompt: the document with every `ui` key stripped. */
  toApiPrompt() {
    /** @type {Record<string, any>} */
    const out = {};
    for (const [id, e] of Object.entries(this.toDocument().nodes)) out[id] = { class_type: e.class_type, inputs: e.inputs };
    return out;
  }

  nextNoteId() {
    let i = this.notes.length + 1;
    while (this.notes.some((m) => m.id === `note${i}`)) i++;
    return `note${i}`;
  }

  /** Add a note (comment) at `pos`; notes live in ui.notes and never execute. */
  addNote(/** @type {[number, number]} */ pos, text = "") {
    const note = { id: this.nextNoteId(), pos: /** @type {[number, number]} */ ([...pos]), size: /** @type {[number, number]} */ ([260, 120]), text };
    this.notes.push(note);
    return note;
  }

  removeNote(/** @type {string} */ id) {
    this.notes = this.notes.filter((m) => m.id !== id);
  }
}
