// @ts-check
/**
 * Small pieces of the canvas drawn besides nodes: group boxes (ComfyUI's `groups`, kept in
 * `ui.groups`) and the read-only value list of a missing-class node.
 */
import { missingValues } from "./missing.js";
import { GROUP_COLORS, drawOrder, isPinned, titleHeight } from "./group_model.js";

/** @param {string} tag @param {string} cls @param {string} [text] */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * Every group's element in drawing order (outer groups first, so nested ones are on top and hit
 * first), the one at index `selected` marked. @param {import("./graph.js").Group[]} groups
 */
export function groupElements(groups, selected = -1) {
  return drawOrder(groups).map((i) => groupElement(groups[i], i, i === selected));
}

/**
 * A group's box behind the nodes: a title bar (drag to move, double-click to rename) with its tools
 * (colour, pin, remove; shown while selected) and a corner to resize. Only the bar and the corner
 * take the pointer, so the canvas inside a group still pans and box-selects.
 * @param {import("./graph.js").Group} g @param {number} index
 */
export function groupElement(g, index, selected = false) {
  const e = el("div", "group");
  e.dataset.groupIndex = String(index);
  e.classList.toggle("selected", selected);
  e.classList.toggle("pinned", isPinned(g));
  const [x, y, w, h] = g.bounding;
  Object.assign(e.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px` });
  // Only a colour (#rgb, #rrggbb or a name) is applied; anything else keeps the default look.
  if (typeof g.color === "string" && /^(#[0-9a-f]{3,8}|[a-z]+)$/i.test(g.color)) e.style.setProperty("--group-color", g.color);
  const title = el("div", "group-title");
  e.style.setProperty("--group-title-h", `${titleHeight(g)}px`);
  title.style.height = `${titleHeight(g)}px`;
  if (Number.isFinite(g.font_size)) title.style.fontSize = `${Math.min(64, Math.max(8, Number(g.font_size)))}px`;
  const tools = el("span", "group-tools");
  const tool = (/** @type {string} */ act, /** @type {string} */ text, /** @type {string} */ tip) => {
    const b = el("button", "group-tool", text);
    b.dataset.groupAction = act;
    b.title = tip;
    return b;
  };
  tools.append(tool("palette", "●", "Colour"), tool("pin", isPinned(g) ? "📌" : "⚲", isPinned(g) ? "Unpin" : "Pin (cannot be moved or resized)"),
    tool("remove", "✕", "Remove the group (keeps its nodes)"));
  title.append(el("span", "group-name", g.title), tools);
  e.append(title, el("div", "group-resize"));
  return e;
}

/** The colour palette under a group's title bar. @returns {HTMLElement} */
export function groupPalette() {
  const p = el("div", "group-palette");
  const none = el("button", "group-swatch none", "∅");
  none.dataset.groupColor = "";
  none.title = "No colour";
  p.append(none);
  for (const [name, c] of Object.entries(GROUP_COLORS)) {
    const b = el("button", "group-swatch");
    b.dataset.groupColor = c;
    b.title = name.replace("_", " ");
    b.style.background = c;
    p.append(b);
  }
  return p;
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

/**
 * Replace `shown` (a title) by a text field holding its text; Enter or leaving the field calls
 * `done(true, text)`, Escape `done(false, text)`, once. Keys typed there never reach the canvas.
 * @param {HTMLElement} shown @param {string} cls @param {(keep: boolean, text: string) => void} done
 */
export function editInPlace(shown, cls, done) {
  const input = document.createElement("input");
  input.className = cls;
  input.value = shown.textContent || "";
  shown.replaceWith(input);
  input.focus();
  input.select();
  let finished = false;
  const finish = (/** @type {boolean} */ keep) => {
    if (finished) return;
    finished = true;
    done(keep, input.value.trim());
  };
  input.addEventListener("keydown", (e) => {
    e.stopPropagation();
    if (e.key === "Enter") finish(true);
    if (e.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
}
