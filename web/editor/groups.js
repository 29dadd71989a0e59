// @ts-check
/**
 * Editing groups on the canvas (geometry in group_model.js, drawing in parts.js): Ctrl+G groups the
 * selection; a click on a group's title bar selects it; dragging the bar moves the group with what
 * lies inside it (nodes, notes, nested groups, reroute points); the corner resizes; a double-click
 * on the title renames; the bar's tools (or a right-click on it) set the colour, pin it, remove it
 * (its nodes stay); Delete removes a selected group. Every edit is one undo step.
 *
 * The handlers listen in the capture phase on the canvas and stop the events they take, so the
 * general canvas handling (interact.js: pan, box select, search on double-click) never sees them.
 */
import { boundsAround, dragSet, isPinned, moved, resized, rounded, DEFAULT_FONT } from "./group_model.js";
import { editInPlace, groupPalette } from "./parts.js";
import { isEditingField } from "./interact.js";

/** @typedef {import("./editor.js").Editor} Editor */
/** @typedef {import("./graph.js").Group} Group */

/** Boxes ([x0, y0, x1, y1], graph units) of every node and note, as drawn. @param {Editor} editor */
export function itemBoxes(editor) {
  const items = [];
  for (const [id, e] of editor.view.nodeEls) {
    const n = editor.graph.nodes.get(id);
    if (n) items.push({ id, box: /** @type {import("./group_model.js").Box} */ ([n.pos[0], n.pos[1], n.pos[0] + e.offsetWidth, n.pos[1] + e.offsetHeight]), pinned: !!(n.ui && n.ui.pinned) });
  }
  for (const m of editor.graph.notes) items.push({ id: m.id, box: /** @type {import("./group_model.js").Box} */ ([m.pos[0], m.pos[1], m.pos[0] + m.size[0], m.pos[1] + m.size[1]]) });
  return items;
}

/** Add a group titled "Group" around the selected nodes and notes (one undo step); its index or -1. @param {Editor} editor */
export function groupSelection(editor) {
  const boxes = itemBoxes(editor).filter((it) => editor.selection.has(it.id)).map((it) => it.box);
  const bounding = boundsAround(boxes);
  if (!bounding) return -1;
  editor.commit(() => {
    editor.graph.groups.push({ title: "Group", bounding, font_size: DEFAULT_FONT });
    editor.selectedGroup = editor.graph.groups.length - 1;
  });
  return editor.selectedGroup;
}

/** Canvas menu's "Add group": around the selection when there is one, else an empty group at `pos`
 * (one undo step); its index. @param {Editor} editor @param {[number, number]} pos */
export function addGroup(editor, pos) {
  if (editor.selection.size) {
    const index = groupSelection(editor);
    if (index >= 0) return index;
  }
  editor.commit(() => {
    editor.graph.groups.push({ title: "Group", bounding: [Math.round(pos[0]), Math.round(pos[1]), 320, 200], font_size: DEFAULT_FONT });
    editor.selectedGroup = editor.graph.groups.length - 1;
  });
  return editor.selectedGroup;
}

/** Remove group `index`, leaving its nodes where they are (one undo step). @param {Editor} editor @param {number} index */
export function removeGroup(editor, index) {
  if (!editor.graph.groups[index]) return;
  editor.commit(() => {
    editor.graph.groups.splice(index, 1);
    editor.selectedGroup = -1;
  });
}

/** Change group `index` by `edit` as one undo step. @param {Editor} editor @param {number} index @param {(g: Group) => void} edit */
export function editGroup(editor, index, edit) {
  const g = editor.graph.groups[index];
  if (g) editor.commit(() => edit(g));
}

/** Wire group editing for `editor`. @param {Editor} editor */
export function installGroups(editor) {
  const root = editor.root;
  /** @type {any} */
  let drag = null;
  const groupEl = (/** @type {number} */ i) => /** @type {HTMLElement | null} */ (root.querySelector(`.group[data-group-index="${i}"]`));

  const select = (/** @type {number} */ i) => {
    editor.selectedGroup = i;
    for (const e of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll(".group")))
      e.classList.toggle("selected", Number(e.dataset.groupIndex) === i);
  };

  root.addEventListener("pointerdown", (e) => {
    const t = /** @type {HTMLElement} */ (e.target);
    const ge = /** @type {HTMLElement | null} */ (t.closest(".group"));
    if (!ge || e.button !== 0 || root.classList.contains("space-pan")) return;
    e.stopPropagation(); // the bar, its tools and the corner are ours, not the canvas's
    if (t.closest("button, input")) return;
    e.preventDefault();
    root.focus({ preventScroll: true });
    const index = Number(ge.dataset.groupIndex);
    editor.select([]);
    select(index);
    const g = editor.graph.groups[index];
    if (!g || isPinned(g)) return;
    const start = editor.view.toGraph(e.clientX, e.clientY);
    if (t.classList.contains("group-resize")) drag = { mode: "resize", index, start, b0: [...g.bounding], nested: [], items: [], points: [] };
    else {
      const set = /** @type {{groups: number[], items: string[]}} */ (dragSet(editor.graph.groups, index, itemBoxes(editor)));
      const items = set.items.map((id) => editor.graph.nodes.get(id) || editor.graph.notes.find((m) => m.id === id))
        .filter((it) => !!it).map((it) => ({ it, p0: [...it.pos] }));
      // Reroute points inside move too (as in ComfyUI), else the links of the moved nodes bend back to where they were.
      const inPoints = /** @type {{items: string[]}} */ (dragSet(editor.graph.groups, index, editor.graph.reroutes.map((r) => ({ id: r.id, box: /** @type {import("./group_model.js").Box} */ ([r.pos[0], r.pos[1], r.pos[0], r.pos[1]]) }))));
      const points = editor.graph.reroutes.filter((r) => inPoints.items.includes(r.id)).map((it) => ({ it, p0: [...it.pos] }));
      drag = { mode: "move", index, start, b0: [...g.bounding], nested: set.groups.map((j) => ({ j, b0: [...editor.graph.groups[j].bounding] })), items, ids: set.items, points };
    }
    root.setPointerCapture(e.pointerId);
  }, { capture: true });
  // Any other press on the canvas deselects the group.
  root.addEventListener("pointerdown", () => { if (editor.selectedGroup >= 0) select(-1); });

  root.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const p = editor.view.toGraph(e.clientX, e.clientY);
    const dx = p[0] - drag.start[0], dy = p[1] - drag.start[1];
    if (Math.abs(dx) + Math.abs(dy) > 0) drag.moved = true;
    const groups = editor.graph.groups;
    const place = (/** @type {number} */ j) => {
      const [x, y, w, h] = groups[j].bounding, ge = groupEl(j);
      if (ge) Object.assign(ge.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px` });
    };
    if (drag.mode === "resize") {
      groups[drag.index].bounding = resized(drag.b0, dx, dy);
      return place(drag.index);
    }
    groups[drag.index].bounding = moved(drag.b0, dx, dy);
    place(drag.index);
    for (const { j, b0 } of drag.nested) { groups[j].bounding = moved(b0, dx, dy); place(j); }
    for (const { it, p0 } of [...drag.items, ...drag.points]) it.pos = [p0[0] + dx, p0[1] + dy];
    editor.view.updatePositions(drag.ids);
    if (drag.points.length) editor.view.drawLinks(); // links through the points, and their dots
  });

  const end = () => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (!d.moved) return;
    const groups = editor.graph.groups;
    for (const j of [d.index, ...d.nested.map((/** @type {any} */ n) => n.j)]) groups[j].bounding = rounded(groups[j].bounding);
    for (const { it } of [...d.items, ...d.points]) it.pos = [Math.round(it.pos[0]), Math.round(it.pos[1])];
    editor.commit(() => {});
  };
  root.addEventListener("pointerup", end);
  root.addEventListener("pointercancel", end);

  root.addEventListener("click", (e) => {
    const b = /** @type {HTMLElement} */ (e.target).closest("button");
    const ge = /** @type {HTMLElement | null} */ (b && b.closest(".group"));
    if (!b || !ge) return;
    const index = Number(ge.dataset.groupIndex);
    const act = b.dataset.groupAction;
    if (act === "palette") togglePalette(ge);
    else if (act === "remove") removeGroup(editor, index);
    else if (act === "pin") editGroup(editor, index, (g) => {
      const { pinned: _p, ...flags } = /** @type {any} */ (g).flags || {};
      if (!isPinned(g)) flags.pinned = true;
      delete /** @type {any} */ (g).locked;
      if (Object.keys(flags).length) /** @type {any} */ (g).flags = flags; else delete /** @type {any} */ (g).flags;
    });
    else if (b.dataset.groupColor !== undefined) editGroup(editor, index, (g) => {
      if (b.dataset.groupColor) g.color = b.dataset.groupColor; else delete g.color;
    });
  });

  /** Open (or close) the colour palette under a group's title bar. */
  const togglePalette = (/** @type {HTMLElement} */ ge) => {
    const open = ge.querySelector(".group-palette");
    if (open) return open.remove();
    ge.append(groupPalette());
  };

  root.addEventListener("contextmenu", (e) => {
    const t = /** @type {HTMLElement} */ (e.target);
    const ge = /** @type {HTMLElement | null} */ (t.closest(".group"));
    if (!ge || !t.closest(".group-title")) return;
    e.preventDefault();
    e.stopPropagation();
    editor.select([]);
    select(Number(ge.dataset.groupIndex));
    togglePalette(ge);
  }, { capture: true });

  root.addEventListener("dblclick", (e) => {
    const t = /** @type {HTMLElement | null} */ (document.elementFromPoint(e.clientX, e.clientY));
    const name = /** @type {HTMLElement | null} */ (t && t.closest(".group-title") && t.closest(".group-title")?.querySelector(".group-name"));
    if (!name || /** @type {HTMLElement} */ (t).closest("button")) return;
    e.stopPropagation();
    rename(Number(/** @type {HTMLElement} */ (name.closest(".group")).dataset.groupIndex), name);
  }, { capture: true });

  /** Edit a group's title in place; Enter or leaving keeps it, Escape cancels, empty means "Group". */
  const rename = (/** @type {number} */ index, /** @type {HTMLElement} */ name) => {
    editInPlace(name, "title-edit group-title-edit", (keep, text) => {
      if (keep) editGroup(editor, index, (g) => { g.title = text || "Group"; });
      else editor.view.render();
    });
  };

  document.addEventListener("keydown", (e) => {
    if (isEditingField()) return;
    const ctrl = e.ctrlKey || e.metaKey;
    if (ctrl && !e.shiftKey && !e.altKey && e.key.toLowerCase() === "g") {
      e.preventDefault(); // the browser's "find next" otherwise
      groupSelection(editor);
    } else if ((e.key === "Delete" || e.key === "Backspace") && editor.selectedGroup >= 0 && !editor.selection.size) {
      e.preventDefault();
      removeGroup(editor, editor.selectedGroup);
    }
  });
}
