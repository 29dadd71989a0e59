// @ts-check
/**
 * Bypass (Ctrl+B) and mute (Ctrl+M) of the selected nodes, as in ComfyUI. The mode lives in the
 * node's document `ui.mode` ("bypass" | "mute"); the server honours it when the document is run
 * (engine/workflow.py: a bypassed node passes its inputs through by type, a muted one is left out).
 */

export const MODES = /** @type {const} */ (["bypass", "mute"]);

/** The node's mode word, or null when it runs. @param {import("./graph.js").GNode} n */
export function modeOf(n) {
  const m = n.ui && n.ui.mode;
  return MODES.includes(m) ? m : null;
}

/** Mark a rendered node element with its mode (CSS draws bypassed purple, muted grey). */
export function markMode(/** @type {HTMLElement} */ e, /** @type {import("./graph.js").GNode} */ n) {
  const m = modeOf(n);
  for (const word of MODES) e.classList.toggle(`mode-${word}`, m === word);
}

/**
 * Toggle `mode` on the selected nodes as one undoable edit: when every selected node already has
 * it, it is cleared on all; else all get it (ComfyUI's toggle on a mixed selection).
 * Returns the number of nodes changed.
 */
export function toggleMode(/** @type {import("./editor.js").Editor} */ editor, /** @type {"bypass" | "mute"} */ mode) {
  const nodes = [...editor.selection].map((id) => editor.graph.nodes.get(id)).filter((n) => !!n);
  if (!nodes.length) return 0;
  const clear = nodes.every((n) => modeOf(/** @type {any} */ (n)) === mode);
  editor.commit(() => {
    for (const n of /** @type {import("./graph.js").GNode[]} */ (nodes)) {
      const { mode: _old, ...rest } = n.ui || {};
      if (clear) {
        if (Object.keys(rest).length) n.ui = rest; else delete n.ui;
      } else n.ui = { ...rest, mode };
    }
  });
  return nodes.length;
}

/** Attach the Ctrl+B / Ctrl+M shortcuts for `editor` to `target` (the document). */
export function installModes(/** @type {import("./editor.js").Editor} */ editor, /** @type {Document} */ target) {
  const editing = () => {
    const a = /** @type {HTMLElement | null} */ (target.activeElement);
    return !!a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT" || a.isContentEditable);
  };
  target.addEventListener("keydown", (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.shiftKey || e.altKey || editing()) return;
    const key = e.key.toLowerCase();
    const mode = key === "b" ? "bypass" : key === "m" ? "mute" : null;
    if (!mode) return;
    e.preventDefault();  // Ctrl+B is the browser's bookmarks bar otherwise
    toggleMode(editor, mode);
  });
}
