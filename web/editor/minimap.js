// @ts-check
/**
 * The minimap: the whole graph in miniature in a corner of the canvas, with the part in view outlined.
 * Clicking or dragging in it centres the view there. One <canvas>, redrawn at most once per animation
 * frame however many edits or pans happen in between; node sizes are measured only after a full
 * render (a pan reuses them), so a pan costs one small canvas redraw. A node being dragged shows in
 * its new place when the drag ends (the edit): redrawing on every move doubled the compositor's work
 * per move in the bench. The boxes are drawn into a cached bitmap, redrawn only when the graph, the
 * selection or the map's scale changes: a pan frame copies it and strokes the outline (gathering and
 * drawing 500 boxes took 0.15 ms a frame with the 500-node bench graph; the copy takes 0.02 ms).
 */

/** @typedef {[number, number, number, number]} Box x0, y0, x1, y1 in graph units */
/** @typedef {{bounds: Box, scale: number, ox: number, oy: number}} Frame graph → minimap: m = o + g·scale */

/** Shown unless this local-storage key says "off". */
export const STORAGE_KEY = "cascade-studio.minimap";
/** Size of the minimap in CSS pixels. */
export const SIZE = /** @type {[number, number]} */ ([200, 140]);

/** The union of `boxes`, grown by `pad` graph units; null when there are none. @param {Box[]} boxes */
export function unionBox(boxes, pad = 40) {
  if (!boxes.length) return null;
  let [x0, y0, x1, y1] = boxes[0];
  for (const b of boxes) {
    x0 = Math.min(x0, b[0]); y0 = Math.min(y0, b[1]); x1 = Math.max(x1, b[2]); y1 = Math.max(y1, b[3]);
  }
  return /** @type {Box} */ ([x0 - pad, y0 - pad, x1 + pad, y1 + pad]);
}

/** The frame fitting `bounds` into a w×h minimap, centred, aspect kept. @param {Box} bounds @param {number} w @param {number} h @returns {Frame} */
export function fitFrame(bounds, w, h) {
  const scale = Math.min(w / (bounds[2] - bounds[0] || 1), h / (bounds[3] - bounds[1] || 1));
  return { bounds, scale, ox: (w - (bounds[2] - bounds[0]) * scale) / 2 - bounds[0] * scale, oy: (h - (bounds[3] - bounds[1]) * scale) / 2 - bounds[1] * scale };
}

/** The graph box visible in a cw×ch canvas at view {offset, scale}. @param {{offset: number[], scale: number}} view @param {number} cw @param {number} ch @returns {Box} */
export function visibleBox(view, cw, ch) {
  const [ox, oy] = view.offset;
  return [-ox / view.scale, -oy / view.scale, (cw - ox) / view.scale, (ch - oy) / view.scale];
}

/** The view offset that centres graph point (gx, gy) in a cw×ch canvas at zoom `scale`. */
export function centredOffset(/** @type {number} */ gx, /** @type {number} */ gy, /** @type {number} */ scale, /** @type {number} */ cw, /** @type {number} */ ch) {
  return /** @type {[number, number]} */ ([cw / 2 - gx * scale, ch / 2 - gy * scale]);
}

export class Minimap {
  /** @param {import("./editor.js").Editor} editor @param {HTMLElement} host where the minimap sits (over the canvas's corner) */
  constructor(editor, host) {
    this.editor = editor;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "minimap";
    this.canvas.title = "Minimap: click or drag to move the view";
    host.append(this.canvas);
    /** @type {Map<string, [number, number]>} node sizes in graph units, measured after each full render */
    this.sizes = new Map();
    this.pending = 0;
    this.measure = true;
    /** How many times it has drawn (the tests check the throttle). */
    this.redraws = 0;
    /** @type {Frame | null} the mapping of the last drawing */
    this.frame = null;
    /** True when the graph may have changed since the boxes were gathered (a pan or zoom does not). */
    this.stale = true;
    /** @type {{box: Box, kind: string, id?: string}[]} */
    this.items = [];
    /** @type {Box | null} union of the items' boxes (no padding) */
    this.extent = null;
    /** The boxes drawn at `cacheKey` (frame and selection), copied on each redraw that only moves the view. */
    this.cache = document.createElement("canvas");
    this.cacheKey = "";
    /** @type {{box: Box, kind: string, id?: string}[] | null} the items the cache was drawn from */
    this.cacheItems = null;
    editor.addEventListener("drawn", (e) => {
      const detail = /** @type {CustomEvent} */ (e).detail;
      this.schedule(detail === "render", detail !== "transform");
    });
    editor.addEventListener("change", () => this.schedule(false));
    editor.addEventListener("viewchange", () => this.schedule(false, false));
    this.installPointer();
    this.show(localStorage.getItem(STORAGE_KEY) !== "off");
  }

  /** Show or hide (remembered across reloads). @param {boolean} on */
  show(on) {
    this.canvas.hidden = !on;
    localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
    if (on) this.schedule(true);
  }

  toggle() { this.show(this.canvas.hidden); }

  /**
   * Redraw at the next animation frame (once, however often asked).
   * @param {boolean} measure re-read node sizes too @param {boolean} [stale] the graph may have changed (not a mere pan)
   */
  schedule(measure, stale = true) {
    this.measure ||= measure;
    this.stale ||= stale;
    if (this.pending || this.canvas.hidden) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw(); });
  }

  /** Every node, note and group box in graph units, with a kind for the colour (and a node's id: selected ones are blue). */
  boxes() {
    const { graph, view } = this.editor;
    if (this.measure) {
      this.measure = false;
      this.sizes.clear();
      for (const [id, e] of view.nodeEls) this.sizes.set(id, [e.offsetWidth, e.offsetHeight]);
    }
    /** @type {{box: Box, kind: string, id?: string}[]} */
    const out = [];
    for (const g of graph.groups) {
      const [x, y, w, h] = g.bounding;
      out.push({ box: [x, y, x + w, y + h], kind: "group" });
    }
    for (const m of graph.notes) out.push({ box: [m.pos[0], m.pos[1], m.pos[0] + m.size[0], m.pos[1] + m.size[1]], kind: "note" });
    for (const n of graph.nodes.values()) {
      const [w, h] = this.sizes.get(n.id) || n.size || [260, 100];
      out.push({ box: [n.pos[0], n.pos[1], n.pos[0] + w, n.pos[1] + h], kind: "node", id: n.id });
    }
    return out;
  }

  draw() {
    this.redraws++;
    const [w, h] = SIZE;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== w * dpr) Object.assign(this.canvas, { width: w * dpr, height: h * dpr });
    const ctx = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext("2d"));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (this.stale) {
      this.stale = false;
      this.items = this.boxes();
      this.extent = unionBox(this.items.map((i) => i.box), 0);
    }
    const root = this.editor.root;
    const visible = visibleBox(this.editor.graph.view, root.clientWidth, root.clientHeight);
    // The map spans the graph and the part in view, so the outline never leaves it; while a press in the
    // map moves the view, the frame stays put so the map does not rescale under the pointer.
    if (!(this.held && this.frame)) {
      const bounds = this.extent && unionBox([this.extent, visible]);
      this.frame = bounds ? fitFrame(bounds, w, h) : null;
    }
    if (!this.frame) return;
    const { scale, ox, oy } = this.frame;
    const rect = (/** @type {Box} */ b) => /** @type {[number, number, number, number]} */ ([ox + b[0] * scale, oy + b[1] * scale, Math.max(1, (b[2] - b[0]) * scale), Math.max(1, (b[3] - b[1]) * scale)]);
    // The selection is read here, not from an event: a selection change shows on the next redraw, as before.
    const key = `${scale} ${ox} ${oy} ${dpr} ${this.items.length} ${[...this.editor.selection].join(",")}`;
    if (key !== this.cacheKey || this.cacheItems !== this.items) {
      this.cacheKey = key;
      this.cacheItems = this.items;
      if (this.cache.width !== w * dpr) Object.assign(this.cache, { width: w * dpr, height: h * dpr });
      const c = /** @type {CanvasRenderingContext2D} */ (this.cache.getContext("2d"));
      c.setTransform(dpr, 0, 0, dpr, 0, 0);
      c.clearRect(0, 0, w, h);
      const sel = this.editor.selection;
      for (const { box, kind, id } of this.items) {
        c.fillStyle = COLOURS[kind === "node" && sel.has(id || "") ? "selected" : kind];
        c.fillRect(...rect(box));
      }
    }
    ctx.drawImage(this.cache, 0, 0, w, h);
    const seen = rect(visible);
    ctx.fillStyle = "rgba(91, 156, 255, 0.12)";
    ctx.fillRect(...seen);
    ctx.strokeStyle = "#5b9cff";
    ctx.lineWidth = 1.5;
    ctx.strokeRect(...seen);
  }

  /** Press or drag in the minimap: the view centres on the graph point under the pointer. */
  installPointer() {
    let down = false;
    /** True while a press in the map moves the view (the frame is kept). */
    this.held = false;
    const jump = (/** @type {PointerEvent} */ e) => {
      if (!this.frame) return;
      const r = this.canvas.getBoundingClientRect();
      const { scale, ox, oy } = this.frame;
      const gx = (e.clientX - r.left - ox) / scale, gy = (e.clientY - r.top - oy) / scale;
      const view = this.editor.graph.view;
      const root = this.editor.root;
      view.offset = centredOffset(gx, gy, view.scale, root.clientWidth, root.clientHeight);
      this.editor.view.applyTransform();
    };
    this.canvas.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      down = this.held = true;
      this.canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
      jump(e);
    });
    this.canvas.addEventListener("pointermove", (e) => { if (down) jump(e); });
    const end = () => {
      if (!down) return;
      down = this.held = false;
      this.schedule(false);
      this.editor.emit("viewchange"); // autosaves the view, as the end of a pan does
    };
    this.canvas.addEventListener("pointerup", end);
    this.canvas.addEventListener("pointercancel", end);
  }
}

/** Fill colours by kind (CSS colours; groups translucent so nodes inside stay visible). */
const COLOURS = /** @type {Record<string, string>} */ ({
  group: "rgba(138, 138, 138, 0.25)", note: "#6b6335", node: "#8a90a0", selected: "#5b9cff",
});
