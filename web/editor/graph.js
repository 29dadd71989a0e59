// @ts-check
/**
 * Pure graph model of the editor: node definitions parsed from GET /object_info, nodes with literal
 * values and typed links, and conversion to/from the one workflow document. No DOM here, so the
 * whole model runs under `node --test`.
 */
import { defaultValue, isSeedInput } from "./defs.js";
import { missingDef } from "./missing.js";
import { loadReroutes, saveReroutes, setLinkReroute } from "./reroutes.js";
import { modeOf, throughModes } from "./modes.js";
export { WIDGET_KINDS, SEED_CONTROLS, parseObjectInfo, isSeedInput, defaultValue } from "./defs.js";

/** @typedef {{name: string, type: string, kind: string, optional: boolean, opts: Record<string, any>, choices: string[] | null, widget: boolean}} InputDef */
/** @typedef {{name: string, type: string}} OutputDef */
/** @typedef {{name: string, displayName: string, category: string, description: string, inputs: InputDef[], outputs: OutputDef[], outputNode: boolean}} NodeDef */
/** @typedef {[string, number]} Link */
/** @typedef {{id: string, type: string, values: Record<string, any>, links: Record<string, Link>, pos: [number, number], size?: [number, number], title?: string, seedControl?: string, ui?: Record<string, any>}} GNode */
/** `ui` holds the document's other per-node ui keys verbatim (colours, `comfy` sockets of a missing class). */
/** @typedef {{title: string, bounding: [number, number, number, number], color?: string, font_size?: number}} Group */
/** @typedef {{id: string, pos: [number, number], size: [number, number], text: string}} Note */

/** A plain object (not null, not an array). @param {any} v @returns {boolean} */
export const isObject = (v) => !!v && typeof v === "object" && !Array.isArray(v);

/** A finite [x, y] pair from loose JSON (missing parts fall back to `dflt`). @returns {[number, number]} */
export function pair(/** @type {any} */ v, /** @type {[number, number]} */ dflt = [0, 0]) {
  const a = Array.isArray(v) ? v : [];
  const x = Number(a[0]), y = Number(a[1]);
  return [Number.isFinite(x) ? x : dflt[0], Number.isFinite(y) ? y : dflt[1]];
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

export class Graph {
  /** @param {Record<string, NodeDef>} defs */
  constructor(defs) {
    this.defs = defs;
    /** @type {Map<string, GNode>} */
    this.nodes = new Map();
    /** @type {Note[]} */
    this.notes = [];
    /** @type {Group[]} ComfyUI-style boxes around nodes; drawn only, never executed. */
    this.groups = [];
    /** @type {import("./reroutes.js").Reroute[]} points links pass through (reroutes.js) */
    this.reroutes = [];
    this.view = { offset: /** @type {[number, number]} */ ([0, 0]), scale: 1 };
  }

  /** Smallest unused numeric id (ids are strings of digits, as in ComfyUI). */
  nextId() {
    let max = 0;
    for (const id of this.nodes.keys()) if (/^\d+$/.test(id)) max = Math.max(max, Number(id));
    return String(max + 1);
  }

  /** The node's class definition; a missing class gets a stand-in built from the file (missing.js). @param {string} id */
  def(id) {
    const n = this.nodes.get(id);
    if (!n) return undefined;
    return this.defs[n.type] || (n.type ? missingDef(n, this.nodes.values()) : undefined);
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

  /** Class names used by nodes that the server does not offer, each once, in node order. */
  missingClasses() {
    return [...new Set([...this.nodes.values()].filter((n) => n.type && !this.defs[n.type]).map((n) => n.type))];
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
    setLinkReroute(this, dst, name, undefined);
  }

  /** Remove the link into `dst`.`name`; a widget input falls back to its literal value. */
  disconnect(/** @type {string} */ dst, /** @type {string} */ name) {
    const n = this.nodes.get(dst);
    if (n) delete n.links[name];
    if (n) setLinkReroute(this, dst, name, undefined);
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
    const ui = { ...n.ui, pos: [...n.pos] };
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
    /** @type {Record<string, any>} */
    const ui = { view: { offset: [...this.view.offset], scale: this.view.scale }, notes };
    if (this.groups.length) ui.groups = this.groups.map((g) => ({ ...g, bounding: [...g.bounding] }));
    const reroutes = saveReroutes(this, nodes);
    if (reroutes.length) ui.reroutes = reroutes;
    return { version: 1, nodes, ui };
  }

  /** Replace the graph's content with a document's (unknown classes are kept as-is). @param {any} doc */
  load(doc) {
    // Everything is read before anything is replaced: a bad entry throws with the old graph intact.
    const nodes = new Map();
    for (const [id, e] of Object.entries(isObject(doc.nodes) ? doc.nodes : {})) {
      if (!isObject(e) || typeof e.class_type !== "string") throw new Error(`node ${id} has no class_type: not a workflow node`);
      nodes.set(String(id), this.nodeFromEntry(String(id), e));
    }
    const ui = isObject(doc.ui) ? doc.ui : {};
    const notes = (Array.isArray(ui.notes) ? ui.notes : []).filter(isObject).map((/** @type {any} */ m, /** @type {number} */ i) => ({
      id: String(m.id ?? `note${i + 1}`), pos: pair(m.pos), size: pair(m.size, [260, 120]), text: String(m.text ?? ""),
    }));
    this.nodes.clear();
    for (const [id, n] of nodes) this.nodes.set(id, n);
    this.notes = notes;
    this.groups = (Array.isArray(ui.groups) ? ui.groups : []).filter((/** @type {any} */ g) => g && Array.isArray(g.bounding))
      .map((/** @type {any} */ g) => {
        const [x, y] = pair(g.bounding), [w, h] = pair(g.bounding.slice(2), [200, 100]);
        return { ...g, title: String(g.title ?? ""), bounding: [x, y, w, h] };
      });
    this.reroutes = loadReroutes(ui.reroutes);
    const v = ui.view || {};
    this.view = { offset: pair(v.offset), scale: Number(v.scale) || 1 };
    return this;
  }

  /** @param {string} id @param {any} e @returns {GNode} */
  nodeFromEntry(id, e) {
    const ui = isObject(e.ui) ? e.ui : {};
    /** @type {GNode} */
    const n = { id, type: String(e.class_type), values: {}, links: {}, pos: pair(ui.pos) };
    const d = this.defs[n.type];
    if (d) for (const inp of d.inputs) if (inp.widget) n.values[inp.name] = defaultValue(inp);
    for (const [name, v] of Object.entries(isObject(e.inputs) ? e.inputs : {})) {
      if (isLink(v)) n.links[name] = [v[0], v[1]];
      else n.values[name] = v;
    }
    if (ui.size) n.size = pair(ui.size, [260, 0]);
    if (ui.title) n.title = String(ui.title);
    if (ui.seed_control) n.seedControl = String(ui.seed_control);
    if (!n.title && e._meta && e._meta.title) n.title = String(e._meta.title);
    // A title equal to the class's display name (as in API prompts' _meta) is no title of its own.
    if (n.title === (d ? d.displayName : n.type)) delete n.title;
    const { pos, size, title, seed_control, ...rest } = ui;
    if (Object.keys(rest).length) n.ui = rest;
    return n;
  }

  /**
   * The API prompt (ComfyUI's format), as the server runs the document (engine/workflow.py): every
   * `ui` key stripped, bypassed and muted nodes left out with their links passed on or dropped
   * (modes.js; a dropped input is named in `_meta.left_out` `{input: reason}`), and each node's
   * `_meta.title` set to its title, else its class's display name, else its class name (some
   * clients find nodes by that title).
   */
  toApiPrompt() {
    /** @type {Record<string, any>} */
    const out = {};
    const anyMode = [...this.nodes.values()].some((n) => modeOf(n));
    for (const n of this.nodes.values()) {
      if (modeOf(n)) continue;
      const e = this.nodeEntry(n);
      const d = this.defs[n.type];
      /** @type {Record<string, string>} */
      const leftOut = {};
      if (anyMode) for (const [name, v] of Object.entries(e.inputs)) {
        const r = throughModes(this, v);
        if (r.reason === null) e.inputs[name] = r.value;
        else { delete e.inputs[name]; leftOut[name] = r.reason; }
      }
      out[n.id] = { class_type: e.class_type, inputs: e.inputs, _meta: { title: n.title || (d && d.displayName) || n.type } };
      if (Object.keys(leftOut).length) out[n.id]._meta.left_out = leftOut;
    }
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
