// @ts-check
/**
 * The editor façade: owns the graph model, its view, the selection and the undo history. Every edit
 * goes through `commit`, which records a snapshot and tells listeners (autosave) about it.
 */
import { Graph } from "./graph.js";
import { View } from "./view.js";
import { History } from "./history.js";
import { openSearch } from "./search.js";
import { compatibleNodes } from "./convert.js";

export class Editor extends EventTarget {
  /** @param {HTMLElement} root @param {Record<string, import("./graph.js").NodeDef>} defs */
  constructor(root, defs) {
    super();
    this.root = root;
    this.graph = new Graph(defs);
    /** @type {Set<string>} node and note ids */
    this.selection = new Set();
    /** Index of the selected group in `graph.groups`, or -1 (groups.js selects them). */
    this.selectedGroup = -1;
    this.history = new History();
    /** Last pointer position in graph coordinates (paste target). */
    this.pointer = /** @type {[number, number]} */ ([40, 40]);
    this.view = new View(root, this);
  }

  /** The current workflow document. */
  document() {
    return this.graph.toDocument();
  }

  /** The document without its view: pans and zooms are not undo steps. */
  snapshot() {
    const doc = this.graph.toDocument();
    const { view, ...ui } = doc.ui;
    return { ...doc, ui };
  }

  /** Replace the workflow; `fit` frames it when the document has no saved view. @param {any} doc */
  load(doc, fit = !(doc.ui && doc.ui.view)) {
    this.show(doc, fit);
    this.history.reset(this.snapshot());
    this.emit("change");
  }

  /**
   * Replace the workflow as one undo step (New, Open…, a drop, History → Load): Ctrl+Z brings the
   * old graph back at its old view. Returns false when `doc` equals the current graph (no step).
   * @param {any} doc @param {boolean | number} fit frame the graph; a number is the smallest zoom kept
   */
  replace(doc, fit = !(doc.ui && doc.ui.view)) {
    const before = this.graph.toDocument().ui.view;
    this.show(doc, fit);
    const changed = this.history.push(this.snapshot(), { before, after: this.graph.toDocument().ui.view });
    this.emit("change");
    return changed;
  }

  /**
   * Show `doc` without touching the undo history; with `history`, adopt that stack (a workflow
   * tab's own). @param {any} doc @param {boolean | number} fit as for `replace` @param {History} [history]
   */
  show(doc, fit = false, history) {
    this.graph.load(doc);
    this.selection.clear();
    this.selectedGroup = -1;
    // Decorations belong to the previous workflow's nodes (ids repeat across workflows).
    Object.assign(this.view.status, { errors: {}, images: {}, previews: {}, progress: {}, texts: {} });
    this.view.render();
    if (fit) this.fitView(typeof fit === "number" ? fit : undefined);
    if (history) {
      this.history = history;
      if (history.index < 0) history.reset(this.snapshot());
      this.emit("change");
    }
  }

  /** @param {string} type @param {any} [detail] */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * Apply an edit, record it for undo, and re-render (skip the re-render for edits made by a widget
   * in place, so its focus and caret survive). An edit that throws is undone at once: the graph
   * goes back to the last recorded state (else it would keep half an edit that no undo step holds
   * and the canvas does not show), and the error is thrown on.
   * @param {() => void} mutate @param {boolean} rerender
   */
  commit(mutate, rerender = true) {
    try {
      mutate();
    } catch (err) {
      if (this.history.index >= 0) this.restore(JSON.parse(this.history.stack[this.history.index]));
      throw err;
    }
    if (rerender) this.view.render();
    if (this.history.push(this.snapshot())) this.emit("change");
  }

  /** Record view changes (pan/zoom/move) without a full re-render. */
  commitQuiet() {
    if (this.history.push(this.snapshot())) this.emit("change");
  }

  undo() { this.restore(this.history.undo(), this.history.lastView); }
  redo() { this.restore(this.history.redo(), this.history.lastView); }

  /** @param {any} doc @param {any} [view] the step's view (a replacement), else keep the current one */
  restore(doc, view = null) {
    if (!doc) return;
    const current = this.graph.view;
    this.graph.load(view ? { ...doc, ui: { ...doc.ui, view } } : doc);
    if (!view) this.graph.view = current;
    for (const id of [...this.selection]) if (!this.graph.nodes.has(id) && !this.graph.notes.some((m) => m.id === id)) this.selection.delete(id);
    this.selectedGroup = -1; // group indices may name other groups after the step
    this.view.render();
    this.emit("change");
  }

  /** @param {Iterable<string>} ids @param {boolean} additive */
  select(ids, additive = false) {
    if (!additive) this.selection.clear();
    for (const id of ids) this.selection.add(id);
    this.view.markSelection();
  }

  toggleSelect(/** @type {string} */ id) {
    if (this.selection.has(id)) this.selection.delete(id);
    else this.selection.add(id);
    this.view.markSelection();
  }

  deleteSelection() {
    if (!this.selection.size) return;
    const ids = [...this.selection];
    this.commit(() => {
      for (const id of ids) {
        if (this.graph.nodes.has(id)) this.graph.removeNode(id);
        else this.graph.removeNote(id);
      }
      this.selection.clear();
    });
  }

  /**
   * Pan and zoom so every node and note fits in the canvas. When that would make text smaller than
   * `minScale`, keep `minScale` and show the top-left part instead (readable beats complete).
   */
  fitView(minScale = 0.1) {
    const boxes = [];
    for (const [id, e] of this.view.nodeEls) {
      const n = /** @type {import("./graph.js").GNode} */ (this.graph.nodes.get(id));
      boxes.push([n.pos[0], n.pos[1], n.pos[0] + e.offsetWidth, n.pos[1] + e.offsetHeight]);
    }
    for (const m of this.graph.notes) boxes.push([m.pos[0], m.pos[1], m.pos[0] + m.size[0], m.pos[1] + m.size[1]]);
    for (const { bounding: [x, y, w, h] } of this.graph.groups) boxes.push([x, y, x + w, y + h]);
    const r = this.root.getBoundingClientRect();
    if (!boxes.length || !r.width) return;
    const x0 = Math.min(...boxes.map((b) => b[0])), y0 = Math.min(...boxes.map((b) => b[1]));
    const x1 = Math.max(...boxes.map((b) => b[2])), y1 = Math.max(...boxes.map((b) => b[3]));
    const pad = 40;
    const fit = Math.min(1.25, Math.max(0.1, Math.min((r.width - 2 * pad) / (x1 - x0 || 1), (r.height - 2 * pad) / (y1 - y0 || 1))));
    const scale = Math.max(fit, minScale);
    this.graph.view.scale = scale;
    this.graph.view.offset = scale > fit
      ? [pad - x0 * scale, pad - y0 * scale]
      : [(r.width - (x1 - x0) * scale) / 2 - x0 * scale, (r.height - (y1 - y0) * scale) / 2 - y0 * scale];
    this.view.applyTransform();
  }

  /** Zoom by `factor` keeping client point (cx, cy) fixed. */
  zoomAt(/** @type {number} */ factor, /** @type {number} */ cx, /** @type {number} */ cy) {
    const v = this.graph.view;
    const r = this.root.getBoundingClientRect();
    const scale = Math.min(3, Math.max(0.1, v.scale * factor));
    const px = cx - r.left, py = cy - r.top;
    v.offset = [px - ((px - v.offset[0]) * scale) / v.scale, py - ((py - v.offset[1]) * scale) / v.scale];
    v.scale = scale;
    this.view.applyTransform();
  }

  /** Add a node of class `type` at graph position `pos`, selected. */
  addNode(/** @type {string} */ type, /** @type {[number, number]} */ pos) {
    let id = "";
    this.commit(() => {
      id = this.graph.addNode(type, pos).id;
      this.selection = new Set([id]);
    });
    return id;
  }

  /**
   * Open node search at client point (x, y); with `pending` (a dragged link end) only compatible
   * classes are offered and the new node is linked to it.
   * @param {number} x @param {number} y
   * @param {{dir: "in" | "out", type: string, node: string, slot: string | number} | null} pending
   */
  async search(x, y, pending = null) {
    const defs = this.graph.defs;
    const cands = pending ? compatibleNodes(defs, pending.type, pending.dir === "out" ? "in" : "out") : Object.values(defs).map((def) => ({ def }));
    const pick = await openSearch(this.root, x, y, cands, pending ? pending.type : "");
    if (!pick) return null;
    const pos = this.view.toGraph(x, y);
    let id = "";
    this.commit(() => {
      id = this.graph.addNode(pick.def.name, pos).id;
      this.selection = new Set([id]);
      if (pending && pick.slot !== undefined) {
        if (pending.dir === "out") this.graph.connect(pending.node, Number(pending.slot), id, String(pick.slot));
        else this.graph.connect(id, Number(pick.slot), pending.node, String(pending.slot));
      }
    });
    return id;
  }

  /** Show a short message over the canvas (refused links and the like). */
  toast(/** @type {string} */ text, kind = "info") {
    this.emit("toast", { text, kind });
  }
}
