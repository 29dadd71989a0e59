// @ts-check
/**
 * Small pieces of the canvas drawn besides nodes: group boxes (ComfyUI's `groups`, kept in
 * `ui.groups`) and the read-only value list of a missing-class node.
 */
import { missingValues } from "./missing.js";

/** @param {string} tag @param {string} cls @param {string} [text] */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A group's box with its title, behind the nodes. @param {import("./graph.js").Group} g @param {number} index */
export function groupElement(g, index) {
  const e = el("div", "group");
  e.dataset.groupIndex = String(index);
  const [x, y, w, h] = g.bounding;
  Object.assign(e.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px` });
  // Only a colour (#rgb, #rrggbb or a name) is applied; anything else keeps the default look.
  if (typeof g.color === "string" && /^(#[0-9a-f]{3,8}|[a-z]+)$/i.test(g.color)) e.style.setProperty("--group-color", g.color);
  const title = el("div", "group-title", g.title);
  if (Number.isFinite(g.font_size)) title.style.fontSize = `${Math.min(64, Math.max(8, Number(g.font_size)))}px`;
  e.append(title);
  return e;
}

/** What a missing-class node still knows (its literal inputs and the file's widget values), read-only. */
export function missingValuesElement(/** @type {import("./graph.js").GNode} */ n) {
  const box = el("div", "missing-values");
  box.title = "The server has no node of this class: its sockets and values are kept as read from the file.";
  for (const [name, value] of missingValues(n)) {
    const row = el("div", "kept-value");
    row.append(el("span", "socket-label", name), el("span", "value", value));
    box.append(row);
  }
  return box;
}
