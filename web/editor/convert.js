// @ts-check
/**
 * Pure conversions around the graph model: copy/paste fragments, link-drop candidates, and loading
 * whatever a user drops (our document, a bare API prompt) with an automatic layout. No DOM.
 */
import { isLink, pair, typesCompatible } from "./graph.js";

/** @typedef {import("./graph.js").Graph} Graph */
/** @typedef {import("./graph.js").NodeDef} NodeDef */

/**
 * Document fragment of the given node and note ids. Links from nodes outside the selection leave
 * the nodes' inputs and go to `external` ({node id: {input: [source id, output]}}), which only a
 * paste keeping links (Ctrl+Shift+V) uses.
 * @param {Graph} graph @param {string[]} ids @param {string[]} noteIds
 */
export function fragment(graph, ids, noteIds = []) {
  const keep = new Set(ids);
  /** @type {Record<string, any>} */
  const nodes = {};
  /** @type {Record<string, Record<string, [string, number]>>} */
  const external = {};
  for (const id of ids) {
    const n = graph.nodes.get(id);
    if (!n) continue;
    const e = graph.nodeEntry(n);
    for (const [name, v] of Object.entries(e.inputs)) {
      if (!isLink(v) || keep.has(v[0])) continue;
      (external[id] ||= {})[name] = [v[0], v[1]];
      delete e.inputs[name];
    }
    // Point ids stay out: a pasted link keeping them would run through the original's points
    // (clip_model.js adds the points to a copy, and a paste gives them fresh ids).
    delete e.ui.link_reroutes;
    nodes[id] = e;
  }
  const notes = graph.notes.filter((m) => noteIds.includes(m.id)).map((m) => ({ ...m, pos: [...m.pos], size: [...m.size] }));
  return { version: 1, kind: "cascade-studio/fragment", nodes, external, ui: { notes } };
}

/**
 * Paste a fragment with fresh ids, shifted by `delta`; returns the new node and note ids, and
 * `remap` (fragment node id → new id). With
 * `keepLinks`, inputs fed from outside the fragment (`frag.external`) are linked again to those
 * sources where they exist in `graph` and the link is allowed (ComfyUI's Ctrl+Shift+V).
 * @param {Graph} graph @param {any} frag @param {[number, number]} delta
 */
export function pasteFragment(graph, frag, delta, keepLinks = false) {
  /** @type {Record<string, string>} */
  const remap = {};
  for (const id of Object.keys(frag.nodes || {})) {
    remap[id] = graph.nextId();
    // Reserve the id at once so the next nextId() call moves on.
    graph.nodes.set(remap[id], { id: remap[id], type: "", values: {}, links: {}, pos: [0, 0] });
  }
  for (const [id, e] of Object.entries(frag.nodes || {})) {
    const n = graph.nodeFromEntry(remap[id], e);
    n.pos = [n.pos[0] + delta[0], n.pos[1] + delta[1]];
    for (const [name, l] of Object.entries(n.links)) {
      if (remap[l[0]]) n.links[name] = [remap[l[0]], l[1]];
      else delete n.links[name];
    }
    graph.nodes.set(n.id, n);
  }
  if (keepLinks) {
    for (const [id, links] of Object.entries(frag.external || {})) {
      if (!remap[id] || !links || typeof links !== "object") continue;
      for (const [name, l] of Object.entries(links)) {
        if (isLink(l) && !remap[l[0]] && graph.nodes.has(l[0]) && graph.canConnect(l[0], l[1], remap[id], name).ok)
          graph.connect(l[0], l[1], remap[id], name);
      }
    }
  }
  const notes = [];
  for (const m of (frag.ui && frag.ui.notes) || []) {
    const note = graph.addNote([m.pos[0] + delta[0], m.pos[1] + delta[1]], String(m.text));
    note.size = pair(m.size, [260, 120]);
    notes.push(note.id);
  }
  return { nodes: Object.values(remap), notes, remap };
}

/**
 * Node classes with a socket able to take (dir "in") or give (dir "out") the dragged type, each with
 * the first matching slot: the list behind link-drop search.
 * @param {Record<string, NodeDef>} defs @param {string} type @param {"in" | "out"} dir
 * @returns {{def: NodeDef, slot: string | number}[]}
 */
export function compatibleNodes(defs, type, dir) {
  const out = [];
  for (const def of Object.values(defs)) {
    if (dir === "in") {
      const sockets = def.inputs.filter((i) => typesCompatible(type, i.type));
      const inp = sockets.find((i) => !i.widget) || sockets[0];
      if (inp) out.push({ def, slot: inp.name });
    } else {
      const i = def.outputs.findIndex((o) => typesCompatible(o.type, type));
      if (i >= 0) out.push({ def, slot: i });
    }
  }
  return out;
}

/** True when every top-level value looks like an API-prompt node ({class_type, inputs}). */
export function isApiPrompt(/** @type {any} */ obj) {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) return false;
  const vals = Object.values(obj);
  return vals.length > 0 && vals.every((v) => v && typeof v.class_type === "string" && v.inputs && typeof v.inputs === "object");
}

/**
 * True for ComfyUI's editor (litegraph) format, schema 0.4 or 1.0: a `nodes` list plus `links`
 * (the same test the server's converter applies).
 */
export function isEditorWorkflow(/** @type {any} */ obj) {
  return !!obj && typeof obj === "object" && !Array.isArray(obj) && Array.isArray(obj.nodes) && "links" in obj;
}

/** True for our workflow document (version 1, nodes keyed by id). */
export function isDocument(/** @type {any} */ obj) {
  return !!obj && typeof obj === "object" && obj.version === 1 && !!obj.nodes && !Array.isArray(obj.nodes);
}

/**
 * Turn anything loadable into a document: the document itself, or an API prompt rebuilt with an
 * automatic layout. Returns null for anything else.
 * @param {any} obj
 */
export function toDocument(obj) {
  if (isDocument(obj)) return obj;
  if (isApiPrompt(obj)) return fromApiPrompt(obj);
  if (obj && isApiPrompt(obj.prompt)) return fromApiPrompt(obj.prompt);
  return null;
}

/**
 * Rebuild a document from an API prompt: same ids, inputs as-is, positions from a layered layout
 * (column = longest path from a source node), `_meta.title` kept as the title.
 * @param {Record<string, any>} prompt
 */
export function fromApiPrompt(prompt) {
  const ids = Object.keys(prompt);
  /** @type {Record<string, number>} */
  const depth = {};
  /** @param {string} id @param {Set<string>} seen @returns {number} */
  const depthOf = (id, seen) => {
    if (id in depth) return depth[id];
    if (seen.has(id) || !prompt[id]) return 0;
    seen.add(id);
    let d = 0;
    for (const v of Object.values(prompt[id].inputs || {})) if (isLink(v) && prompt[v[0]]) d = Math.max(d, depthOf(v[0], seen) + 1);
    depth[id] = d;
    return d;
  };
  for (const id of ids) depthOf(id, new Set());
  /** @type {Record<number, number>} */
  const rows = {};
  /** @type {Record<string, any>} */
  const nodes = {};
  const sorted = [...ids].sort((a, b) => depth[a] - depth[b] || Number(a) - Number(b) || a.localeCompare(b));
  for (const id of sorted) {
    const e = prompt[id];
    const row = rows[depth[id]] || 0;
    const height = 60 + 34 * Object.keys(e.inputs || {}).length;
    rows[depth[id]] = row + height + 40;
    /** @type {Record<string, any>} */
    const ui = { pos: [40 + depth[id] * 320, 40 + row] };
    if (e._meta && e._meta.title) ui.title = String(e._meta.title);
    nodes[id] = { class_type: e.class_type, inputs: { ...e.inputs }, ui };
  }
  return { version: 1, nodes, ui: { view: { offset: [0, 0], scale: 1 }, notes: [] } };
}
