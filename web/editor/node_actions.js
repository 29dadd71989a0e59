// @ts-check
/**
 * Editor actions behind the context menus and their shortcuts. Each is one undo step (one
 * `editor.commit`); those on a node that belongs to the selection act on every selected node.
 */
import { flag, setUi, asInputs } from "./node_flags.js";
import { fragment, pasteFragment, fromApiPrompt } from "./convert.js";
import { isLink } from "./graph.js";

/** @typedef {import("./editor.js").Editor} Editor */

/** The node ids an action on node `id` applies to: the selected nodes when `id` is one of them. */
export function targets(/** @type {Editor} */ editor, /** @type {string} */ id) {
  if (!editor.selection.has(id)) return editor.graph.nodes.has(id) ? [id] : [];
  return [...editor.selection].filter((s) => editor.graph.nodes.has(s));
}

/**
 * Toggle a boolean ui flag ("collapsed", "pinned") on `ids`: cleared on all when all have it, else
 * set on all (as bypass and mute do). @param {Editor} editor @param {string[]} ids @param {string} key
 */
export function toggleFlag(editor, ids, key) {
  const nodes = ids.map((id) => editor.graph.nodes.get(id)).filter((n) => !!n);
  if (!nodes.length) return;
  const clear = nodes.every((n) => flag(/** @type {any} */ (n), key));
  editor.commit(() => { for (const n of nodes) setUi(/** @type {any} */ (n), key, clear ? undefined : true); });
}

/** Give `ids` a ComfyUI colour pair, or clear it (null). @param {Editor} editor @param {string[]} ids @param {{color: string, bgcolor: string} | null} c */
export function setColour(editor, ids, c) {
  editor.commit(() => {
    for (const id of ids) {
      const n = editor.graph.nodes.get(id);
      if (!n) continue;
      setUi(n, "color", c ? c.color : undefined);
      setUi(n, "bgcolor", c ? c.bgcolor : undefined);
    }
  });
}

/** Show widget `name` of node `id` as an input socket only, or back as a widget. */
export function toggleAsInput(/** @type {Editor} */ editor, /** @type {string} */ id, /** @type {string} */ name) {
  const n = editor.graph.nodes.get(id);
  if (!n) return;
  const names = asInputs(n);
  if (names.has(name)) names.delete(name); else names.add(name);
  editor.commit(() => setUi(n, "as_input", names.size ? [...names] : undefined));
}

/** Remove `ids` (nodes or notes). @param {Editor} editor @param {string[]} ids */
export function removeItems(editor, ids) {
  if (!ids.length) return;
  editor.commit(() => {
    for (const id of ids) {
      if (editor.graph.nodes.has(id)) editor.graph.removeNode(id);
      else editor.graph.removeNote(id);
      editor.selection.delete(id);
    }
  });
}

/** Clone `ids` beside themselves (no links from outside, as ComfyUI's Clone); the clones get selected. */
export function cloneNodes(/** @type {Editor} */ editor, /** @type {string[]} */ ids) {
  if (!ids.length) return;
  const frag = JSON.parse(JSON.stringify(fragment(editor.graph, ids)));
  editor.commit(() => {
    const added = pasteFragment(editor.graph, frag, [30, 30]);
    editor.selection = new Set(added.nodes);
  });
}

/**
 * Arrange nodes in layers, left to right along their links: columns from the API-prompt layout
 * (convert.js: column = longest path from a source), rows stacked by each node's drawn height.
 * Acts on the selected nodes when two or more are selected, else on the whole graph; the arranged
 * block keeps its top-left corner.
 * @param {Editor} editor
 */
export function arrange(editor) {
  const sel = [...editor.selection].filter((id) => editor.graph.nodes.has(id));
  const ids = sel.length > 1 ? sel : [...editor.graph.nodes.keys()];
  if (!ids.length) return;
  const keep = new Set(ids);
  /** @type {Record<string, any>} */
  const prompt = {};
  for (const id of ids) {
    const n = /** @type {import("./graph.js").GNode} */ (editor.graph.nodes.get(id));
    const inputs = Object.fromEntries(Object.entries(n.links).filter(([, l]) => isLink(l) && keep.has(l[0])));
    prompt[id] = { class_type: n.type, inputs };
  }
  const layout = fromApiPrompt(prompt).nodes;
  /** @type {Map<number, string[]>} */
  const columns = new Map();
  for (const id of ids) {
    const x = layout[id].ui.pos[0];
    columns.set(x, [...(columns.get(x) || []), id]);
  }
  const nodes = ids.map((id) => /** @type {import("./graph.js").GNode} */ (editor.graph.nodes.get(id)));
  const x0 = Math.min(...nodes.map((n) => n.pos[0])), y0 = Math.min(...nodes.map((n) => n.pos[1]));
  const size = (/** @type {string} */ id) => {
    const e = editor.view.nodeEls.get(id);
    return [e ? e.offsetWidth : 260, e ? e.offsetHeight : 120];
  };
  editor.commit(() => {
    let x = x0;
    for (const col of [...columns.keys()].sort((a, b) => a - b)) {
      const members = /** @type {string[]} */ (columns.get(col)).sort((a, b) => layout[a].ui.pos[1] - layout[b].ui.pos[1]);
      let y = y0, width = 0;
      for (const id of members) {
        const [w, h] = size(id);
        /** @type {import("./graph.js").GNode} */ (editor.graph.nodes.get(id)).pos = [Math.round(x), Math.round(y)];
        y += h + 30;
        width = Math.max(width, w);
      }
      x += width + 60;
    }
  });
}
