// @ts-check
/**
 * Pure geometry of groups (ComfyUI's `{title, bounding: [x, y, w, h], color?, font_size?, flags?}`,
 * kept in the document's `ui.groups`): the box around a selection, what a group contains, how
 * groups nest, and what moves when a group is dragged. No DOM here, so it runs under `node --test`.
 *
 * Containment is geometric, as in ComfyUI: an item belongs to a group while its whole box lies
 * inside the group's bounding. Boxes here are `[x0, y0, x1, y1]` in graph units.
 */

/** @typedef {import("./graph.js").Group} Group */
/** @typedef {[number, number, number, number]} Box */

export const PAD = 10;
export const DEFAULT_FONT = 24;
export const MIN_SIZE = /** @type {const} */ ([140, 80]);

/** Title bar height in graph units for a group's font size (ComfyUI: font_size × 1.4). */
export function titleHeight(/** @type {Partial<Group>} */ g) {
  const f = Number(g.font_size);
  return Math.round((Number.isFinite(f) && f > 0 ? f : DEFAULT_FONT) * 1.4);
}

/**
 * The bounding `[x, y, w, h]` of a new group around `boxes`: `pad` on every side plus room for the
 * title bar above. Null when there is nothing to group.
 * @param {Box[]} boxes @returns {[number, number, number, number] | null}
 */
export function boundsAround(boxes, pad = PAD, fontSize = DEFAULT_FONT) {
  if (!boxes.length) return null;
  const x0 = Math.min(...boxes.map((b) => b[0])), y0 = Math.min(...boxes.map((b) => b[1]));
  const x1 = Math.max(...boxes.map((b) => b[2])), y1 = Math.max(...boxes.map((b) => b[3]));
  const top = titleHeight({ font_size: fontSize });
  return [Math.round(x0 - pad), Math.round(y0 - pad - top), Math.round(x1 - x0 + 2 * pad), Math.round(y1 - y0 + 2 * pad + top)];
}

/** A group's bounding as a box. @param {Group} g @returns {Box} */
export function groupBox(g) {
  const [x, y, w, h] = g.bounding;
  return [x, y, x + w, y + h];
}

/** True when box `b` lies wholly inside box `outer`. @param {Box} b @param {Box} outer */
export function inside(b, outer) {
  return b[0] >= outer[0] && b[1] >= outer[1] && b[2] <= outer[2] && b[3] <= outer[3];
}

/**
 * Whether group `j` is nested in group `i`. Two groups with the same bounding would contain each
 * other; the later one (drawn on top) counts as the inner one, so nesting is never circular.
 * @param {Group[]} groups @param {number} i @param {number} j
 */
export function nestedIn(groups, i, j) {
  if (i === j) return false;
  const a = groupBox(groups[i]), b = groupBox(groups[j]);
  if (!inside(b, a)) return false;
  return !inside(a, b) || j > i;
}

/** How many groups each group is nested in (0: top level). @param {Group[]} groups */
export function depths(groups) {
  return groups.map((_, j) => groups.reduce((n, _g, i) => n + (nestedIn(groups, i, j) ? 1 : 0), 0));
}

/**
 * Group indices in drawing order: outer groups first, so an inner group is drawn on top of the
 * group around it and its title is the one a pointer hits. @param {Group[]} groups
 */
export function drawOrder(groups) {
  const d = depths(groups);
  return groups.map((_, i) => i).sort((a, b) => d[a] - d[b] || a - b);
}

/** A pinned group (ComfyUI `flags.pinned`, older files `locked`) is neither moved nor resized. */
export function isPinned(/** @type {any} */ g) {
  return !!g && (g.locked === true || (!!g.flags && g.flags.pinned === true));
}

/**
 * What moves when group `index` is dragged: the nested groups and the items (nodes, notes) whose box
 * lies inside it. A pinned item stays, and so does a pinned nested group with everything in it
 * (ComfyUI: a pinned thing does not move). Returns null when the group itself is pinned.
 * @param {Group[]} groups @param {number} index
 * @param {{id: string, box: Box, pinned?: boolean}[]} items
 * @returns {{groups: number[], items: string[]} | null}
 */
export function dragSet(groups, index, items) {
  if (isPinned(groups[index])) return null;
  const outer = groupBox(groups[index]);
  const held = groups.map((g, j) => (j !== index && isPinned(g) && nestedIn(groups, index, j) ? groupBox(g) : null))
    .filter((b) => b !== null);
  const free = (/** @type {Box} */ b) => !held.some((h) => inside(b, /** @type {Box} */ (h)));
  const nested = groups.map((_, j) => j).filter((j) => nestedIn(groups, index, j) && !isPinned(groups[j]) && free(groupBox(groups[j])));
  const ids = items.filter((it) => !it.pinned && inside(it.box, outer) && free(it.box)).map((it) => it.id);
  return { groups: nested, items: ids };
}

/** `bounding` moved by (dx, dy). @param {number[]} b @param {number} dx @param {number} dy */
export function moved(b, dx, dy) {
  return /** @type {[number, number, number, number]} */ ([b[0] + dx, b[1] + dy, b[2], b[3]]);
}

/** `bounding` with its bottom-right corner dragged by (dw, dh), never below MIN_SIZE. */
export function resized(/** @type {number[]} */ b, /** @type {number} */ dw, /** @type {number} */ dh) {
  return /** @type {[number, number, number, number]} */ ([b[0], b[1], Math.max(MIN_SIZE[0], b[2] + dw), Math.max(MIN_SIZE[1], b[3] + dh)]);
}

/** A copy of `bounding` with whole numbers (a drag ends on graph units, documents keep integers). */
export function rounded(/** @type {number[]} */ b) {
  return /** @type {[number, number, number, number]} */ (b.map((v) => Math.round(v)));
}

/** ComfyUI's group colours (LGraphCanvas.node_colors[…].groupcolor), offered by the group palette. */
export const GROUP_COLORS = /** @type {const} */ ({
  red: "#a88", brown: "#b06634", green: "#8a8", blue: "#88a", pale_blue: "#3f789e",
  cyan: "#8aa", purple: "#a1309b", yellow: "#b58b2a", black: "#444",
});
