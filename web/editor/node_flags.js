// @ts-check
/**
 * Per-node editor flags kept in the node's document `ui` (the server ignores them): `collapsed`
 * (only the title bar shows; ComfyUI `flags.collapsed`), `pinned` (cannot be moved or resized;
 * ComfyUI `flags.pinned`), `color` / `bgcolor` (ComfyUI's title and body colours) and `as_input`
 * (widget names shown as plain input sockets, ComfyUI's "convert widget to input").
 */

/** ComfyUI's node colour palette (LGraphCanvas.node_colors): title `color`, body `bgcolor`. */
export const NODE_COLOURS = [
  { name: "red", color: "#322", bgcolor: "#533" },
  { name: "brown", color: "#332922", bgcolor: "#593930" },
  { name: "green", color: "#232", bgcolor: "#353" },
  { name: "blue", color: "#223", bgcolor: "#335" },
  { name: "pale blue", color: "#2a363b", bgcolor: "#3f5159" },
  { name: "cyan", color: "#233", bgcolor: "#355" },
  { name: "purple", color: "#323", bgcolor: "#535" },
  { name: "yellow", color: "#432", bgcolor: "#653" },
  { name: "black", color: "#222", bgcolor: "#000" },
];

/** Only colours (#rgb… or a name) reach the style; anything else in a file keeps the default look. */
const COLOUR = /^(#[0-9a-f]{3,8}|[a-z]+)$/i;

/** @typedef {import("./graph.js").GNode} GNode */

/** Whether `key` is set (true) in the node's ui. @param {GNode} n @param {string} key */
export function flag(n, key) {
  return !!(n.ui && n.ui[key] === true);
}

/** Set ui `key` to `value`, or remove it when `value` is undefined (an empty ui is dropped). @param {GNode} n @param {string} key @param {any} value */
export function setUi(n, key, value) {
  const { [key]: _old, ...rest } = n.ui || {};
  if (value !== undefined) rest[key] = value;
  if (Object.keys(rest).length) n.ui = rest;
  else delete n.ui;
}

/** Widget names this node shows as plain input sockets. @param {GNode} n @returns {Set<string>} */
export function asInputs(n) {
  const v = n.ui && n.ui.as_input;
  return new Set(Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
}

/** Mark a rendered node element with its flags and colours (CSS draws them). @param {HTMLElement} e @param {GNode} n */
export function markFlags(e, n) {
  e.classList.toggle("collapsed", flag(n, "collapsed"));
  e.classList.toggle("pinned", flag(n, "pinned"));
  const ui = n.ui || {};
  const head = typeof ui.color === "string" && COLOUR.test(ui.color) ? ui.color : "";
  const body = typeof ui.bgcolor === "string" && COLOUR.test(ui.bgcolor) ? ui.bgcolor : "";
  e.classList.toggle("coloured", !!(head || body));
  if (head) e.style.setProperty("--node-head-color", head);
  if (body) e.style.setProperty("--node-body-color", body);
}
