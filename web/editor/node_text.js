// @ts-check
/**
 * A node's text outputs (ComfyUI's `ui: {"text": [...]}`, e.g. the LoRA report "48 of 48 tensors
 * applied") shown in the node body after it ran. The box has a fixed maximum height and scrolls, so
 * a long report never pushes the node over the one below it.
 */

/**
 * The text lines a node's `executed` output carries, or null when it has none.
 * @param {any} output the `output` of an `executed` event (the node's ui dict) @returns {string[] | null}
 */
export function outputTexts(output) {
  const text = output && output.text;
  if (text == null) return null;
  const items = Array.isArray(text) ? text : [text];
  return items.map((t) => (typeof t === "string" ? t : JSON.stringify(t)));
}

/**
 * Show `lines` (or nothing) in a node element's `.node-text` box; rebuilt only when the text changed.
 * @param {HTMLElement} nodeEl @param {string[] | undefined} lines
 */
export function showNodeText(nodeEl, lines) {
  const box = /** @type {HTMLElement | null} */ (nodeEl.querySelector(".node-text"));
  if (!box) return;
  const text = lines && lines.length ? lines.join("\n") : "";
  if (box.textContent !== text) box.textContent = text;
  box.title = text ? "Text output of the last run" : "";
}
