// @ts-check
/**
 * What a copy carries besides nodes and notes, and how a paste brings it back: groups and the reroute
 * points of the copied links. Pure model (no DOM), so it runs under `node --test`.
 *
 * The fragment uses the document's own shapes (`ui.groups`, `ui.reroutes`, each node entry's
 * `ui.link_reroutes`), so a pasted whole document brings its groups and points the same way. A paste
 * never reuses a point id of the original: the pasted links would then run through the original's
 * points (and a later edit of one would bend the other). Points get fresh ids and move with the paste.
 */
import { groupBox, inside, nestedIn } from "./group_model.js";
import { linkPath, loadReroutes, nextRerouteId, rerouteOf, setLinkReroute } from "./reroutes.js";
import { pasteFragment } from "./convert.js";
import { isObject } from "./graph.js";

/** @typedef {import("./graph.js").Graph} Graph */
/** @typedef {import("./graph.js").Group} Group */
/** @typedef {import("./group_model.js").Box} Box */
/** @typedef {import("./reroutes.js").Reroute} Reroute */

const MAX_CHAIN = 1000; // a parent cycle in a hand-edited fragment stops here

/**
 * What a copy takes. Our selection holds either items (nodes, notes) or one group (`selectedGroup`,
 * groups.js): a selected group is copied with everything inside it (items and nested groups), as
 * dragging it moves them. Besides, a group is copied when all the items inside it are (a group
 * selected with its nodes: Ctrl+A, or a box drawn around it), with the groups nested in it; a group
 * with nothing inside is copied only within a copied group.
 * @param {Group[]} groups @param {number} selectedGroup index, or -1
 * @param {{id: string, box: Box}[]} items every node and note, as drawn
 * @param {Iterable<string>} selected the selected item ids
 * @returns {{groups: number[], ids: string[]}} group indices (document order) and item ids to copy
 */
export function copySet(groups, selectedGroup, items, selected) {
  const ids = new Set(selected);
  /** @type {Set<number>} */
  const picked = new Set();
  if (groups[selectedGroup]) {
    picked.add(selectedGroup);
    const outer = groupBox(groups[selectedGroup]);
    for (const it of items) if (inside(it.box, outer)) ids.add(it.id);
  }
  groups.forEach((g, i) => {
    const within = items.filter((it) => inside(it.box, groupBox(g)));
    if (within.length && within.every((it) => ids.has(it.id))) picked.add(i);
  });
  for (const i of [...picked]) groups.forEach((_, j) => { if (nestedIn(groups, i, j)) picked.add(j); });
  return { groups: [...picked].sort((a, b) => a - b), ids: [...ids] };
}

/**
 * Add to fragment `frag` (convert.js `fragment` of `graph`) the groups at `groupIndices` and the
 * points of every link into its nodes, from inside or from outside (Ctrl+Shift+V keeps those).
 * Returns `frag`. @param {Graph} graph @param {any} frag @param {number[]} groupIndices
 */
export function addExtras(graph, frag, groupIndices) {
  /** @type {Map<string, Reroute>} */
  const points = new Map();
  for (const id of Object.keys(frag.nodes || {})) {
    const n = graph.nodes.get(id);
    if (!n) continue;
    /** @type {Record<string, string>} */
    const map = {};
    for (const input of Object.keys(n.links)) {
      const path = linkPath(graph, id, input);
      if (!path.length) continue;
      map[input] = path[path.length - 1];
      for (const pid of path) {
        const r = /** @type {Reroute} */ (rerouteOf(graph, pid));
        points.set(pid, { ...r, pos: [r.pos[0], r.pos[1]] });
      }
    }
    if (Object.keys(map).length) (frag.nodes[id].ui ||= {}).link_reroutes = map;
  }
  // A path is a whole parent chain, so every parent is in `points` unless a cycle cut the chain.
  for (const r of points.values()) if (r.parent !== undefined && !points.has(r.parent)) delete r.parent;
  frag.ui ||= {};
  if (points.size) frag.ui.reroutes = [...points.values()];
  const groups = groupIndices.filter((i) => graph.groups[i]).map((i) => JSON.parse(JSON.stringify(graph.groups[i])));
  if (groups.length) frag.ui.groups = groups;
  return frag;
}

/**
 * The top-left corner of everything in fragment `frag` (nodes, notes, groups, points), graph units;
 * null when it holds nothing. A paste puts this corner at the pointer. @param {any} frag
 * @returns {[number, number] | null}
 */
export function fragmentCorner(frag) {
  const ui = frag.ui || {};
  /** @type {any[][]} */
  const corners = [
    ...Object.values(frag.nodes || {}).map((/** @type {any} */ e) => e?.ui?.pos || [0, 0]),
    ...(Array.isArray(ui.notes) ? ui.notes : []).map((/** @type {any} */ m) => m?.pos),
    ...(Array.isArray(ui.groups) ? ui.groups : []).map((/** @type {any} */ g) => g?.bounding),
    ...(Array.isArray(ui.reroutes) ? ui.reroutes : []).map((/** @type {any} */ r) => r?.pos),
  ].filter((p) => Array.isArray(p) && Number.isFinite(Number(p[0])) && Number.isFinite(Number(p[1])));
  if (!corners.length) return null;
  return [Math.min(...corners.map((p) => Number(p[0]))), Math.min(...corners.map((p) => Number(p[1])))];
}

/**
 * After convert.js `pasteFragment` pasted `frag`'s nodes (`remap`: fragment id → new id), give the
 * links the paste made the fragment's points again: fresh ids, moved by `delta`, shared where the
 * original shared them. A link the paste did not make (from outside, without Ctrl+Shift+V) takes no
 * points. The fragment's groups are added moved by `delta`. Returns the new point ids and group indices.
 * @param {Graph} graph @param {any} frag @param {Record<string, string>} remap @param {[number, number]} delta
 * @returns {{points: string[], groups: number[]}}
 */
export function pasteExtras(graph, frag, remap, delta) {
  const ui = frag.ui || {};
  const source = new Map(loadReroutes(ui.reroutes).map((r) => [r.id, r]));
  /** @type {Map<string, string>} fragment point id → new id */
  const fresh = new Map();
  /** Copy the chain from fragment point `id` towards the source; the new id of `id`. */
  const copyChain = (/** @type {string} */ id) => {
    const chain = [];
    let r = source.get(id);
    while (r && !fresh.has(r.id) && !chain.includes(r) && chain.length < MAX_CHAIN) {
      chain.push(r);
      r = r.parent === undefined ? undefined : source.get(r.parent);
    }
    for (const c of chain.reverse()) { // source side first, so each parent has its new id already
      /** @type {Reroute} */
      const p = { id: nextRerouteId(graph), pos: [c.pos[0] + delta[0], c.pos[1] + delta[1]] };
      const parent = c.parent === undefined ? undefined : fresh.get(c.parent);
      if (parent !== undefined) p.parent = parent;
      graph.reroutes.push(p);
      fresh.set(c.id, p.id);
    }
    return /** @type {string} */ (fresh.get(id));
  };
  for (const [old, id] of Object.entries(remap)) {
    const n = graph.nodes.get(id);
    if (!n) continue;
    // Drop the point ids the entry brought along: they name the original's points (or nothing).
    for (const input of Object.keys(n.ui?.link_reroutes || {})) setLinkReroute(graph, id, input, undefined);
    const map = frag.nodes?.[old]?.ui?.link_reroutes;
    if (!map || typeof map !== "object") continue;
    for (const [input, rid] of Object.entries(map))
      if (n.links[input] && source.has(String(rid))) setLinkReroute(graph, id, input, copyChain(String(rid)));
  }
  const groups = [];
  for (const g of Array.isArray(ui.groups) ? ui.groups : []) {
    if (!g || !Array.isArray(g.bounding)) continue;
    const [x, y, w, h] = [0, 1, 2, 3].map((i) => Number(g.bounding[i]));
    if (![x, y, w, h].every(Number.isFinite)) continue;
    graph.groups.push({ ...JSON.parse(JSON.stringify(g)), title: String(g.title ?? ""), bounding: [x + delta[0], y + delta[1], w, h] });
    groups.push(graph.groups.length - 1);
  }
  return { points: [...fresh.values()], groups };
}

/**
 * Fragment `frag` (pasted text: ours, a document, a rebuilt API prompt) with what a paste cannot
 * take dropped, so a paste never throws half-way: node entries that are not objects with a string
 * `class_type`, an `inputs` or `ui` that is not an object (emptied), notes without a finite
 * position. Groups and points are checked where they are pasted (pasteExtras). Returns a new
 * fragment, or null when `frag` is not an object. @param {any} frag
 */
export function cleanFragment(frag) {
  if (!isObject(frag)) return null;
  /** @type {Record<string, any>} */
  const nodes = {};
  for (const [id, e] of Object.entries(isObject(frag.nodes) ? frag.nodes : {})) {
    if (!isObject(e) || typeof e.class_type !== "string") continue;
    nodes[id] = { ...e, inputs: isObject(e.inputs) ? e.inputs : {}, ui: isObject(e.ui) ? e.ui : {} };
  }
  const ui = isObject(frag.ui) ? frag.ui : {};
  const finite = (/** @type {any} */ p) => Array.isArray(p) && Number.isFinite(Number(p[0])) && Number.isFinite(Number(p[1]));
  const notes = (Array.isArray(ui.notes) ? ui.notes : []).filter((/** @type {any} */ m) => isObject(m) && finite(m.pos))
    .map((/** @type {any} */ m) => ({ ...m, pos: [Number(m.pos[0]), Number(m.pos[1])], text: String(m.text ?? "") }));
  return { ...frag, nodes, external: isObject(frag.external) ? frag.external : {}, ui: { ...ui, notes } };
}

/**
 * Paste fragment `frag` (cleaned: cleanFragment) into `graph` so that the top-left corner of what
 * the paste really adds (nodes, notes, groups, points) lands at `at` (graph units). A point of a
 * link the paste drops (from outside, without `keepLinks`) is not added, so it does not count:
 * counting it would put the nodes away from the pointer by as far as that point lies.
 * @param {Graph} graph @param {any} frag @param {[number, number]} at @param {boolean} keepLinks
 * @returns {{nodes: string[], notes: string[], points: string[], groups: number[]}}
 */
export function pasteAt(graph, frag, at, keepLinks) {
  const added = pasteFragment(graph, frag, [0, 0], keepLinks);
  const extras = pasteExtras(graph, frag, added.remap, [0, 0]);
  const nodes = added.nodes.map((id) => /** @type {import("./graph.js").GNode} */ (graph.nodes.get(id)));
  const notes = graph.notes.filter((m) => added.notes.includes(m.id));
  const points = extras.points.map((id) => /** @type {Reroute} */ (rerouteOf(graph, id)));
  const groups = extras.groups.map((i) => graph.groups[i]);
  const corners = [...nodes.map((n) => n.pos), ...notes.map((m) => m.pos), ...points.map((r) => r.pos), ...groups.map((g) => g.bounding)];
  if (corners.length) {
    const dx = Math.round(at[0] - Math.min(...corners.map((p) => p[0]))), dy = Math.round(at[1] - Math.min(...corners.map((p) => p[1])));
    for (const o of [...nodes, ...notes, ...points]) o.pos = [o.pos[0] + dx, o.pos[1] + dy];
    for (const g of groups) g.bounding = [g.bounding[0] + dx, g.bounding[1] + dy, g.bounding[2], g.bounding[3]];
  }
  return { nodes: added.nodes, notes: added.notes, points: extras.points, groups: extras.groups };
}
