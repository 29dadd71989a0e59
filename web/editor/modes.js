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

const MAX_HOPS = 10_000; // a chain of bypassed nodes this long is a loop (as engine/workflow.py)

/**
 * Where input value `value` comes from once bypassed and muted nodes are left out: the server's rule
 * (engine/workflow.py `_through_modes`, so Save API writes the prompt Queue runs). A bypassed node's
 * output k passes on its input at slot k when that is a linked input of the output's type, else its
 * first linked input of that type; a link from a muted node, or a bypassed one with nothing to pass
 * on, is dropped with the reason. Slots follow /object_info's order (required, then optional), which
 * is the class's own except where an optional input precedes a required one of the same type.
 * @param {import("./graph.js").Graph} graph @param {any} value an input's literal or `[source id, output]`
 * @returns {{value: any, reason: null} | {value: undefined, reason: string}}
 */
export function throughModes(graph, value) {
  const isLink = (/** @type {any} */ v) => Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && Number.isInteger(v[1]);
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    if (!isLink(value)) return { value, reason: null };
    const src = graph.nodes.get(value[0]);
    const mode = src ? modeOf(src) : null;
    if (!src || !mode) return { value, reason: null };
    if (mode === "mute") return { value: undefined, reason: `node ${src.id} is muted` };
    const def = graph.defs[src.type];
    if (!def) return { value: undefined, reason: `node ${src.id} is bypassed and its class is unknown` };
    const out = def.outputs[value[1]];
    if (!out) return { value: undefined, reason: `node ${src.id} is bypassed and has no output ${value[1]}` };
    const inputs = def.inputs.map((i) => [i.type, src.links[i.name] ? [...src.links[i.name]] : null]);
    const same = inputs[value[1]];
    const picked = same && same[0] === out.type && same[1] ? same[1] : (inputs.find(([t, l]) => t === out.type && l) || [])[1];
    if (!picked) return { value: undefined, reason: `node ${src.id} is bypassed and has no linked ${out.type} input to pass on` };
    value = picked;
  }
  return { value: undefined, reason: "the link loops through bypassed nodes" };
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
