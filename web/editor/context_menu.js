// @ts-check
/**
 * Right-click menus of the canvas and of a node (built on menu.js), plus Alt+C (collapse, ComfyUI's
 * key). Canvas: add a node by category where the menu opened, paste, fit, arrange, add a note.
 * Node: title, colour, bypass, mute, pin, collapse, clone, widget ↔ input, remove.
 */
import { openMenu } from "./menu.js";
import { NODE_COLOURS, flag, asInputs } from "./node_flags.js";
import { modeOf, toggleMode } from "./modes.js";
import { targets, toggleFlag, setColour, toggleAsInput, removeItems, cloneNodes, arrange } from "./node_actions.js";
import { isEditingField } from "./interact.js";
import { addGroup } from "./groups.js";

/** @typedef {import("./editor.js").Editor} Editor */
/** @typedef {import("./menu.js").MenuItem} MenuItem */

/**
 * "Add node" submenus from the classes' categories ("a/b" nests b under a), categories first, then
 * the nodes of that level, each sorted by name. @param {Editor} editor @param {[number, number]} pos
 * @returns {MenuItem[]}
 */
export function addNodeItems(editor, pos) {
  /** @typedef {{subs: Map<string, Tree>, defs: import("./graph.js").NodeDef[]}} Tree */
  /** @type {Tree} */
  const root = { subs: new Map(), defs: [] };
  for (const def of Object.values(editor.graph.defs)) {
    let t = root;
    for (const part of String(def.category || "other").split("/").filter(Boolean)) {
      if (!t.subs.has(part)) t.subs.set(part, { subs: new Map(), defs: [] });
      t = /** @type {Tree} */ (t.subs.get(part));
    }
    t.defs.push(def);
  }
  const items = (/** @type {Tree} */ t) => /** @type {MenuItem[]} */ ([
    ...[...t.subs.keys()].sort().map((name) => ({ label: name, items: () => items(/** @type {Tree} */ (t.subs.get(name))) })),
    ...t.defs.sort((a, b) => a.displayName.localeCompare(b.displayName))
      .map((def) => ({ label: def.displayName, action: () => editor.addNode(def.name, pos) })),
  ]);
  return items(root);
}

/**
 * Wire the menus and Alt+C for `editor`. `actions.rename(id)` edits a title in place (interact.js);
 * `actions.paste()` pastes the last copied fragment at `editor.pointer` (clipboard.js).
 * @param {Editor} editor @param {{rename: (id: string) => void, paste: () => void}} actions
 */
export function installContextMenus(editor, actions) {
  const root = editor.root;

  /** @param {[number, number]} pos @returns {MenuItem[]} */
  const canvasItems = (pos) => [
    { label: "Add node", items: () => addNodeItems(editor, pos) },
    { label: "Paste", key: "Ctrl+V", action: () => { editor.pointer = pos; actions.paste(); } },
    { label: "Add note", action: () => editor.commit(() => { editor.selection = new Set([editor.graph.addNote(pos).id]); }) },
    { label: editor.selection.size ? "Group selection" : "Add group", key: "Ctrl+G", action: () => addGroup(editor, pos) },
    { label: "Fit view", key: ".", action: () => { editor.fitView(); editor.emit("viewchange"); } },
    { label: editor.selection.size > 1 ? "Arrange selection" : "Arrange", action: () => arrange(editor) },
  ];

  /** @param {string} id @returns {MenuItem[]} */
  const nodeItems = (id) => {
    const n = /** @type {import("./graph.js").GNode} */ (editor.graph.nodes.get(id));
    const ids = targets(editor, id);
    const def = editor.graph.def(id);
    const shown = asInputs(n);
    const widgets = def ? def.inputs.filter((i) => i.widget) : [];
    return [
      { label: "Title…", action: () => actions.rename(id) },
      { label: "Colour", items: [
        { label: "No colour", action: () => setColour(editor, ids, null) },
        ...NODE_COLOURS.map((c) => ({ label: c.name, swatch: c.bgcolor, checked: n.ui?.bgcolor === c.bgcolor, action: () => setColour(editor, ids, c) })),
      ] },
      { label: "Bypass", key: "Ctrl+B", checked: modeOf(n) === "bypass", action: () => toggleMode(editor, "bypass") },
      { label: "Mute", key: "Ctrl+M", checked: modeOf(n) === "mute", action: () => toggleMode(editor, "mute") },
      { label: "Pin", checked: flag(n, "pinned"), action: () => toggleFlag(editor, ids, "pinned") },
      { label: "Collapse", key: "Alt+C", checked: flag(n, "collapsed"), action: () => toggleFlag(editor, ids, "collapsed") },
      { label: "Clone", action: () => cloneNodes(editor, ids) },
      { label: "Widget ↔ input", disabled: !widgets.length, items: widgets.map((w) => ({
        label: shown.has(w.name) ? `${w.name}: show as widget` : `${w.name}: show as input only`,
        checked: shown.has(w.name), action: () => toggleAsInput(editor, id, w.name) })) },
      { label: ids.length > 1 ? `Remove ${ids.length} nodes` : "Remove", key: "Del", action: () => removeItems(editor, ids) },
    ];
  };

  root.addEventListener("contextmenu", (e) => {
    const t = /** @type {HTMLElement} */ (document.elementFromPoint(e.clientX, e.clientY) || e.target);
    if (t.closest("input, textarea, select")) return; // the browser's own menu for text
    e.preventDefault();
    const pos = editor.view.toGraph(e.clientX, e.clientY);
    const item = /** @type {HTMLElement | null} */ (t.closest(".node, .note"));
    const id = item ? item.dataset.nodeId || item.dataset.noteId || "" : "";
    // Right-clicking outside the selection acts on that item alone, as in ComfyUI.
    if (id && !editor.selection.has(id)) editor.select([id]);
    if (item && item.dataset.nodeId && editor.graph.nodes.has(id)) openMenu(nodeItems(id), e.clientX, e.clientY);
    else if (item) openMenu([{ label: "Remove note", key: "Del", action: () => removeItems(editor, [id]) }], e.clientX, e.clientY);
    else openMenu(canvasItems(pos), e.clientX, e.clientY);
  });

  document.addEventListener("keydown", (e) => {
    // e.code: Alt+C types "ç" on a Mac and some layouts.
    if (!e.altKey || e.ctrlKey || e.metaKey || e.code !== "KeyC" || isEditingField()) return;
    e.preventDefault();
    toggleFlag(editor, [...editor.selection].filter((id) => editor.graph.nodes.has(id)), "collapsed");
  });
}
