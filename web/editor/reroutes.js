// @ts-check
/**
 * Reroutes: points a link passes through, as ComfyUI's native reroutes. Pure model (no DOM), so it
 * runs under `node --test`. Stored in the document's `ui` only (the server ignores them):
 * document `ui.reroutes: [{id, pos: [x, y], parent?: id}]`, where `parent` is the next point towards
 * the source, and on the target node `ui.link_reroutes: {input: id}`, the point nearest that input.
 * A link's path is that point's parent chain, so several inputs fed by one output may share points
 * (a fan-out). Links and execution are unchanged by any of this.
 */
/** A finite [x, y] from loose JSON (0 where unusable). @returns {[number, number]} */
function pair(/** @type {any} */ v) {
  const a = Array.isArray(v) ? v : [];
  const x = Number(a[0]), y = Number(a[1]);
  return [Number.isFinite(x) ? x : 0, Number.isFinite(y) ? y : 0];
}

/** @typedef {{id: string, pos: [number, number], parent?: string}} Reroute */
/** @typedef {import("./graph.js").Graph & {reroutes?: Reroute[]}} RGraph */

const MAX_CHAIN = 1000; // a parent cycle in a hand-edited file stops here

/** Reroutes from a document's loose `ui.reroutes` (bad entries dropped). @returns {Reroute[]} */
export function loadReroutes(/** @type {any} */ raw) {
  if (!Array.isArray(raw)) return [];
  const out = [];
  for (const r of raw) {
    if (!r || (typeof r.id !== "string" && typeof r.id !== "number")) continue;
    /** @type {Reroute} */
    const p = { id: String(r.id), pos: pair(r.pos) };
    if (r.parent !== undefined && r.parent !== null) p.parent = String(r.parent);
    out.push(p);
  }
  return out;
}

/** The reroute with `id`, or undefined. @param {RGraph} g @param {string | undefined} id */
export function rerouteOf(g, id) {
  return id === undefined ? undefined : (g.reroutes || []).find((r) => r.id === id);
}

/** The point ids of the link into `dst`.`input`, from its source to `dst`. @param {RGraph} g */
export function linkPath(g, /** @type {string} */ dst, /** @type {string} */ input) {
  const n = g.nodes.get(dst);
  if (!n || !n.links[input]) return [];
  /** @type {string[]} */
  const ids = [];
  let r = rerouteOf(g, n.ui?.link_reroutes?.[input]);
  while (r && !ids.includes(r.id) && ids.length < MAX_CHAIN) {
    ids.push(r.id);
    r = rerouteOf(g, r.parent);
  }
  return ids.reverse();
}

/** Every link passing point `id`: `[{dst, input}]`. @param {RGraph} g @param {string} id */
export function linksThrough(g, id) {
  const out = [];
  for (const n of g.nodes.values())
    for (const input of Object.keys(n.links)) if (linkPath(g, n.id, input).includes(id)) out.push({ dst: n.id, input });
  return out;
}

/** Set (or clear, with undefined) the point nearest `dst`.`input` (a new link there has none). */
export function setLinkReroute(/** @type {RGraph} */ g, /** @type {string} */ dst, /** @type {string} */ input, /** @type {string | undefined} */ id) {
  const n = g.nodes.get(dst);
  if (!n) return;
  const map = { ...(n.ui?.link_reroutes || {}) };
  if (id === undefined) delete map[input]; else map[input] = id;
  const { link_reroutes: _old, ...rest } = n.ui || {};
  n.ui = Object.keys(map).length ? { ...rest, link_reroutes: map } : rest;
  if (!Object.keys(n.ui).length) delete n.ui;
}

/** A point id not yet used in `g` ("r1", "r2", …). @param {RGraph} g */
export function nextRerouteId(g) {
  let i = (g.reroutes || []).length + 1;
  while (rerouteOf(g, `r${i}`)) i++;
  return `r${i}`;
}

/** Squared distance from `p` to segment a–b. @param {[number, number]} p @param {[number, number]} a @param {[number, number]} b */
function segDist2(p, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  const len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len)) : 0;
  const x = a[0] + t * dx - p[0], y = a[1] + t * dy - p[1];
  return x * x + y * y;
}

/**
 * Add a point at `pos` on the link into `dst`.`input`, in the segment of its path nearest `pos`
 * (`from`/`to`: the link's socket positions). A point inserted before a shared point is shared too
 * (all links through it come from one output). Returns the new id, or null without such a link.
 * @param {RGraph} g @param {string} dst @param {string} input @param {[number, number]} pos
 * @param {[number, number]} from @param {[number, number]} to
 */
export function addReroute(g, dst, input, pos, from, to) {
  if (!g.nodes.get(dst)?.links[input]) return null;
  const path = linkPath(g, dst, input);
  const pts = [from, ...path.map((id) => /** @type {Reroute} */ (rerouteOf(g, id)).pos), to];
  let best = 0;
  for (let i = 1; i < pts.length - 1; i++) if (segDist2(pos, pts[i], pts[i + 1]) < segDist2(pos, pts[best], pts[best + 1])) best = i;
  /** @type {Reroute} */
  const r = { id: nextRerouteId(g), pos: [Math.round(pos[0]), Math.round(pos[1])] };
  if (best > 0) r.parent = path[best - 1];
  (g.reroutes ||= []).push(r);
  const after = path[best]; // the point downstream of the new one, if any
  if (after === undefined) setLinkReroute(g, dst, input, r.id);
  else /** @type {Reroute} */ (rerouteOf(g, after)).parent = r.id;
  return r.id;
}

/** Remove point `id`; every link through it keeps its source and its other points. @param {RGraph} g @param {string} id */
export function removeReroute(g, id) {
  const r = rerouteOf(g, id);
  if (!r) return;
  for (const o of g.reroutes || []) if (o.parent === id) { if (r.parent) o.parent = r.parent; else delete o.parent; }
  for (const n of g.nodes.values())
    for (const [input, rid] of Object.entries(n.ui?.link_reroutes || {})) if (rid === id) setLinkReroute(g, n.id, input, r.parent);
  g.reroutes = (g.reroutes || []).filter((o) => o.id !== id);
}

/**
 * Link the output that feeds point `id` into `dst`.`input` through that point (a fan-out), via
 * Graph.connect (typed; throws when refused). Returns false when no link passes the point.
 * @param {RGraph} g @param {string} id @param {string} dst @param {string} input
 */
export function connectFrom(g, id, dst, input) {
  const via = linksThrough(g, id)[0];
  if (!via) return false;
  const [src, out] = /** @type {import("./graph.js").GNode} */ (g.nodes.get(via.dst)).links[via.input];
  g.connect(src, out, dst, input);
  setLinkReroute(g, dst, input, id);
  return true;
}

/**
 * Keep a moved link's points: after the link into `fromDst`.`fromInput` was picked up and dropped
 * on `dst`.`input` from the same output, the new input passes the same points.
 * @param {RGraph} g @param {string | undefined} id the old link's point nearest its input
 */
export function carryReroute(g, id, /** @type {string} */ dst, /** @type {string} */ input) {
  if (id !== undefined && rerouteOf(g, id)) setLinkReroute(g, dst, input, id);
}

/**
 * The document form: only points some link passes (a deleted link or node leaves none behind),
 * and each node's `link_reroutes` only for its linked inputs. `nodes` are the document's entries.
 * @param {RGraph} g @param {Record<string, any>} nodes @returns {Reroute[]}
 */
export function saveReroutes(g, nodes) {
  const used = new Set();
  for (const n of g.nodes.values()) {
    const entry = nodes[n.id];
    const map = entry?.ui?.link_reroutes;
    if (!map) continue;
    /** @type {Record<string, string>} */
    const kept = {};
    for (const input of Object.keys(map)) {
      const path = linkPath(g, n.id, input);
      if (!path.length) continue;
      kept[input] = path[path.length - 1];
      for (const id of path) used.add(id);
    }
    if (Object.keys(kept).length) entry.ui.link_reroutes = kept; else delete entry.ui.link_reroutes;
  }
  return (g.reroutes || []).filter((r) => used.has(r.id)).map((r) => {
    /** @type {Reroute} */
    const out = { id: r.id, pos: [r.pos[0], r.pos[1]] };
    if (r.parent !== undefined && used.has(r.parent)) out.parent = r.parent;
    return out;
  });
}
