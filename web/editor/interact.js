// @ts-check
/**
 * Pointer and keyboard handling on the canvas: pan (background drag, space-drag, middle button),
 * wheel/pinch zoom, selection (click, shift-click, shift/ctrl box), moving, typed link dragging with
 * live feedback, link drop on empty canvas → compatible-node search, renaming titles.
 */
import { typesCompatible } from "./graph.js";
import { carryReroute } from "./reroutes.js";
import { editInPlace } from "./parts.js";

/** @typedef {import("./editor.js").Editor} Editor */
/** @typedef {{dir: "in" | "out", type: string, node: string, slot: string | number}} Pending */

const FIELD = "input, textarea, select, button, option, .search-popup";

/** True while the keyboard focus is in a form field (shortcuts must not steal typing). */
export function isEditingField() {
  const a = /** @type {HTMLElement | null} */ (document.activeElement);
  return !!a && (a.matches("input, textarea, select") || a.isContentEditable);
}

/** Wire all canvas interactions of `editor`. @param {Editor} editor */
export function installInteractions(editor) {
  const root = editor.root;
  const view = editor.view;
  let spaceDown = false;
  /** @type {Map<number, [number, number]>} touch pointers, for pinch */
  const touches = new Map();
  /** @type {any} */
  let drag = null;

  /** Can a link from `p` end on socket element `s`? */
  const accepts = (/** @type {Pending} */ p, /** @type {HTMLElement} */ s) => {
    const dir = s.classList.contains("in") ? "in" : "out";
    if (dir === p.dir || s.dataset.nodeId === p.node) return false;
    const [a, b] = p.dir === "out" ? [p.type, s.dataset.socketType || ""] : [s.dataset.socketType || "", p.type];
    return typesCompatible(a, b);
  };

  const markSockets = (/** @type {Pending | null} */ p) => {
    root.classList.toggle("linking", !!p);
    for (const s of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll(".socket"))) {
      s.classList.toggle("compatible", !!p && accepts(p, s));
      s.classList.toggle("incompatible", !!p && !accepts(p, s));
    }
  };

  const startLink = (/** @type {HTMLElement} */ s, /** @type {PointerEvent} */ e) => {
    const node = s.dataset.nodeId || "";
    if (s.classList.contains("out")) {
      const slot = Number(s.dataset.output);
      return { mode: "link", pending: { dir: "out", node, slot, type: s.dataset.socketType }, from: view.socketPos(s) };
    }
    const input = s.dataset.input || "";
    const link = editor.graph.nodes.get(node)?.links[input];
    if (link) {
      // Grabbing a linked input picks the link up from its source, to move or drop it (its
      // reroute points go with it to the input it lands on).
      const reroute = editor.graph.nodes.get(node)?.ui?.link_reroutes?.[input];
      editor.graph.disconnect(node, input);
      view.render();
      const src = view.outputSocket(link[0], link[1]);
      const type = editor.graph.outputType(link[0], link[1]) || "*";
      return { mode: "link", detached: true, detachedFrom: [node, input], reroute, pending: { dir: "out", node: link[0], slot: link[1], type }, from: src ? view.socketPos(src) : view.toGraph(e.clientX, e.clientY) };
    }
    return { mode: "link", pending: { dir: "in", node, slot: input, type: s.dataset.socketType }, from: view.socketPos(s) };
  };

  const finishLink = (/** @type {PointerEvent} */ e) => {
    const p = /** @type {Pending} */ (drag.pending);
    view.drawDragLink(null);
    markSockets(null);
    if (!drag.marked) {
      // A click without a drag: nothing to connect; put a picked-up link back.
      if (drag.detached) editor.commit(() => {
        editor.graph.connect(p.node, Number(p.slot), drag.detachedFrom[0], drag.detachedFrom[1]);
        carryReroute(editor.graph, drag.reroute, drag.detachedFrom[0], drag.detachedFrom[1]);
      });
      return;
    }
    const under = /** @type {HTMLElement | null} */ (document.elementFromPoint(e.clientX, e.clientY));
    let target = /** @type {HTMLElement | null} */ (under?.closest(".socket") || null);
    const nodeEl = /** @type {HTMLElement | null} */ (under?.closest(".node") || null);
    if (!target && nodeEl && nodeEl.dataset.nodeId !== p.node) {
      // Dropped on a node body: take its first socket that fits.
      target = [.../** @type {NodeListOf<HTMLElement>} */ (nodeEl.querySelectorAll(".socket"))].find((s) => accepts(p, s)) || null;
    }
    if (target) {
      if (!accepts(p, target)) {
        const sameDir = target.classList.contains(p.dir);
        const sameNode = target.dataset.nodeId === p.node;
        if (!(sameDir && sameNode)) { // dropping back where it started is just a cancel
          editor.toast(sameNode ? "A node cannot feed itself" : sameDir ? "Links go from an output to an input"
            : `Cannot connect ${p.type} to ${target.dataset.socketType}`, "error");
        }
        target.classList.add("refused");
        setTimeout(() => target?.classList.remove("refused"), 800);
        if (drag.detached) editor.commit(() => {});
        return;
      }
      const [src, out, dst, input] = p.dir === "out"
        ? [p.node, Number(p.slot), target.dataset.nodeId || "", target.dataset.input || ""]
        : [target.dataset.nodeId || "", Number(target.dataset.output), p.node, String(p.slot)];
      const r = editor.graph.canConnect(src, out, dst, input);
      if (!r.ok) editor.toast(r.reason, "error");
      editor.commit(() => {
        if (!r.ok) return;
        editor.graph.connect(src, out, dst, input);
        if (drag.detached) carryReroute(editor.graph, drag.reroute, dst, input);
      });
      return;
    }
    if (drag.detached) editor.commit(() => {});
    if (!nodeEl && !under?.closest(".note")) editor.search(e.clientX, e.clientY, p);
  };

  root.addEventListener("pointerdown", (e) => {
    const t = /** @type {HTMLElement} */ (e.target);
    if (e.pointerType === "touch") touches.set(e.pointerId, [e.clientX, e.clientY]);
    if (touches.size === 2) { drag = { mode: "pinch", dist: pinchDistance(), last: [e.clientX, e.clientY] }; return; }
    if (t.closest(FIELD) && !t.classList.contains("socket")) return;
    root.focus({ preventScroll: true });
    const item = /** @type {HTMLElement | null} */ (t.closest(".node, .note"));
    const socket = /** @type {HTMLElement | null} */ (t.closest(".socket"));
    if (e.button === 1 || (spaceDown && e.button === 0)) drag = { mode: "pan" };
    else if (item && t.classList.contains("resize-handle") && !item.classList.contains("pinned")) drag = { mode: "resize", el: item, w: item.offsetWidth, h: item.offsetHeight };
    else if (socket && e.button === 0) drag = startLink(socket, e);
    else if (item && e.button === 0) {
      const id = item.dataset.nodeId || item.dataset.noteId || "";
      if (e.shiftKey || e.ctrlKey || e.metaKey) editor.toggleSelect(id);
      else if (!editor.selection.has(id)) editor.select([id]);
      drag = { mode: "move", moved: false };
    } else if (e.button === 0 && (e.shiftKey || e.ctrlKey || e.metaKey)) {
      drag = { mode: "box", additive: true, start: [e.clientX, e.clientY] };
    } else if (e.button === 0) drag = { mode: "pan", clickToClear: true, moved: false };
    if (!drag) return;
    drag.last = [e.clientX, e.clientY];
    root.setPointerCapture(e.pointerId);
    e.preventDefault();
  });

  const pinchDistance = () => {
    const [a, b] = [...touches.values()];
    return Math.hypot(a[0] - b[0], a[1] - b[1]);
  };

  root.addEventListener("pointermove", (e) => {
    editor.pointer = view.toGraph(e.clientX, e.clientY);
    if (touches.has(e.pointerId)) touches.set(e.pointerId, [e.clientX, e.clientY]);
    if (!drag) return;
    const dx = e.clientX - drag.last[0], dy = e.clientY - drag.last[1];
    if (drag.mode === "pinch" && touches.size === 2) {
      const d = pinchDistance();
      const [a, b] = [...touches.values()];
      editor.zoomAt(d / drag.dist, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2);
      drag.dist = d;
    } else if (drag.mode === "pan") {
      const v = editor.graph.view;
      v.offset = [v.offset[0] + dx, v.offset[1] + dy];
      view.applyTransform();
      if (Math.abs(dx) + Math.abs(dy) > 0) drag.moved = true;
    } else if (drag.mode === "move") {
      const s = editor.graph.view.scale;
      for (const id of editor.selection) {
        const it = editor.graph.nodes.get(id) || editor.graph.notes.find((m) => m.id === id);
        // A pinned node (ui.pinned) stays put while the rest of the selection moves.
        if (it && !("ui" in it && it.ui?.pinned === true)) it.pos = [it.pos[0] + dx / s, it.pos[1] + dy / s];
      }
      drag.moved = true;
      view.updatePositions(editor.selection);
    } else if (drag.mode === "resize") {
      const s = editor.graph.view.scale;
      drag.w += dx / s;
      drag.h += dy / s;
      Object.assign(drag.el.style, { width: `${Math.max(160, drag.w)}px`, [drag.el.classList.contains("note") ? "height" : "minHeight"]: `${Math.max(60, drag.h)}px` });
      view.drawLinks();
    } else if (drag.mode === "link") {
      const under = /** @type {HTMLElement | null} */ (document.elementFromPoint(e.clientX, e.clientY)?.closest(".socket") || null);
      const [a, b] = orient(drag, view.toGraph(e.clientX, e.clientY));
      view.drawDragLink(a, b, drag.pending.type, !under || accepts(drag.pending, under));
      if (!drag.marked) { markSockets(drag.pending); drag.marked = true; }
    } else if (drag.mode === "box") {
      const r = root.getBoundingClientRect();
      const [x0, y0] = drag.start;
      Object.assign(view.box.style, { display: "block", left: `${Math.min(x0, e.clientX) - r.left}px`, top: `${Math.min(y0, e.clientY) - r.top}px`,
        width: `${Math.abs(e.clientX - x0)}px`, height: `${Math.abs(e.clientY - y0)}px` });
    }
    drag.last = [e.clientX, e.clientY];
  });

  /** Link path endpoints ordered output → input. */
  /** @returns {[number, number][]} */
  const orient = (/** @type {any} */ d, /** @type {[number, number]} */ p) => (d.pending.dir === "out" ? [d.from, p] : [p, d.from]);

  const end = (/** @type {PointerEvent} */ e) => {
    touches.delete(e.pointerId);
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.mode === "link") { drag = d; finishLink(e); drag = null; }
    else if (d.mode === "resize") {
      const id = d.el.dataset.nodeId || d.el.dataset.noteId;
      const it = editor.graph.nodes.get(id) || editor.graph.notes.find((m) => m.id === id);
      if (it) editor.commit(() => { it.size = [Math.round(Math.max(160, d.w)), Math.round(Math.max(60, d.h))]; });
    }
    else if (d.mode === "move" && d.moved) {
      for (const id of editor.selection) {
        const it = editor.graph.nodes.get(id) || editor.graph.notes.find((m) => m.id === id);
        if (it) it.pos = [Math.round(it.pos[0]), Math.round(it.pos[1])];
      }
      editor.commit(() => {}, false);
    } else if (d.mode === "pan") {
      if (d.clickToClear && !d.moved) editor.select([]);
      editor.emit("viewchange");
    } else if (d.mode === "box") {
      view.box.style.display = "none";
      const a = view.toGraph(d.start[0], d.start[1]), b = view.toGraph(e.clientX, e.clientY);
      const [x0, x1] = [Math.min(a[0], b[0]), Math.max(a[0], b[0])], [y0, y1] = [Math.min(a[1], b[1]), Math.max(a[1], b[1])];
      const hits = [];
      for (const [id, el] of view.nodeEls) {
        const n = editor.graph.nodes.get(id);
        if (n && n.pos[0] < x1 && n.pos[0] + el.offsetWidth > x0 && n.pos[1] < y1 && n.pos[1] + el.offsetHeight > y0) hits.push(id);
      }
      for (const m of editor.graph.notes) if (m.pos[0] < x1 && m.pos[0] + m.size[0] > x0 && m.pos[1] < y1 && m.pos[1] + m.size[1] > y0) hits.push(m.id);
      editor.select(hits, d.additive);
    }
  };
  root.addEventListener("pointerup", end);
  root.addEventListener("pointercancel", end);

  root.addEventListener("wheel", (e) => {
    if (/** @type {HTMLElement} */ (e.target).closest("textarea, .search-popup")) return;
    // A node's text or error box that overflows scrolls under the wheel instead of zooming.
    const box = /** @type {HTMLElement} */ (e.target).closest(".node-text, .node-error-text");
    if (box && box.scrollHeight > box.clientHeight) return;
    e.preventDefault();
    editor.zoomAt(Math.exp(-e.deltaY * (e.ctrlKey ? 0.01 : 0.0015)), e.clientX, e.clientY);
    editor.emit("viewchange");
  }, { passive: false });

  root.addEventListener("dblclick", (e) => {
    // Pointer capture retargets clicks to the canvas, so look up what is really under the pointer.
    const t = /** @type {HTMLElement} */ (document.elementFromPoint(e.clientX, e.clientY) || e.target);
    const title = /** @type {HTMLElement | null} */ (t.closest(".node-title"));
    if (title) return rename(title);
    if (!t.closest(".node, .note, .search-popup")) editor.search(e.clientX, e.clientY);
  });

  /** Edit a node title in place; an empty title goes back to the class's display name. */
  const rename = (/** @type {HTMLElement} */ title) => {
    const id = /** @type {HTMLElement} */ (title.closest(".node")).dataset.nodeId || "";
    const n = editor.graph.nodes.get(id);
    if (!n) return;
    const def = editor.graph.defs[n.type];
    editInPlace(title, "title-edit", (keep, v) => editor.commit(() => {
      if (keep) n.title = v && (!def || v !== def.displayName) ? v : undefined;
      if (!n.title) delete n.title;
    }));
  };

  document.addEventListener("keydown", (e) => {
    if (isEditingField()) return;
    const ctrl = e.ctrlKey || e.metaKey;
    if (e.key === " ") { spaceDown = true; root.classList.add("space-pan"); e.preventDefault(); }
    else if (e.key === "Delete" || e.key === "Backspace") { editor.deleteSelection(); e.preventDefault(); }
    else if (ctrl && e.key.toLowerCase() === "z") { if (e.shiftKey) editor.redo(); else editor.undo(); e.preventDefault(); }
    else if (ctrl && e.key.toLowerCase() === "y") { editor.redo(); e.preventDefault(); }
    else if (ctrl && e.key.toLowerCase() === "a") { editor.select([...editor.graph.nodes.keys(), ...editor.graph.notes.map((m) => m.id)]); e.preventDefault(); }
    else if (e.key === "." && !ctrl) { editor.fitView(); editor.emit("viewchange"); }
  });
  document.addEventListener("keyup", (e) => {
    if (e.key === " ") { spaceDown = false; root.classList.remove("space-pan"); }
  });
  return {
    /** Edit node `id`'s title in place (the node menu's "Title…"). @param {string} id */
    rename: (/** @type {string} */ id) => {
      const title = /** @type {HTMLElement | null} */ (view.nodeEls.get(id)?.querySelector(".node-title") || null);
      if (title) rename(title);
    },
  };
}
