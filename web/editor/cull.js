// @ts-check
/**
 * Off-screen culling: node elements far from the view get the class `far`, which style.css turns into
 * `content-visibility: hidden`. Their insides (rows, sockets, widgets: about 30 layout objects and a dozen
 * paint layers a node) then drop out of the per-frame work: on every pointer move a pan of the 500-node
 * bench graph ran a layout over ~17,000 layout objects (~5,000 culled) and recomputed the paint cull rect
 * of every paint layer (CPU per move, Chromium's trace: layout 2.6 -> 0.8 ms, paint phase 8.6 -> 5.3 ms
 * together with view.js's pan wrapper; README, bench/editor_big_graph.py --trace). The node box itself stays, at the size it had when it
 * was culled (an inline `contain-intrinsic-size`), and layout queries inside it (socket offsets for the
 * links) still answer correctly: the browser lays a skipped subtree out on demand.
 *
 * The rendered area is the view grown by one canvas size each way; it is recomputed only when the view
 * comes within half a canvas of its edge (or zooms out past it), so a pan stays a transform change.
 */
import { visibleBox } from "./minimap.js";

/** @typedef {[number, number, number, number]} Box x0, y0, x1, y1 in graph units */

/** Is `a` inside `b`? @param {Box} a @param {Box} b */
const inside = (a, b) => a[0] >= b[0] && a[1] >= b[1] && a[2] <= b[2] && a[3] <= b[3];

/** `b` grown by `dx`, `dy` each way. @param {Box} b @param {number} dx @param {number} dy @returns {Box} */
const grow = (b, dx, dy) => [b[0] - dx, b[1] - dy, b[2] + dx, b[3] + dy];

export class Culler {
  /** @param {import("./view.js").View} view */
  constructor(view) {
    this.view = view;
    /** @type {Box | null} graph area whose nodes are rendered; null until the first update after a render */
    this.area = null;
    /** Canvas size in CSS pixels, kept by a ResizeObserver so a pan never reads layout. */
    this.size = /** @type {[number, number]} */ ([view.root.clientWidth, view.root.clientHeight]);
    new ResizeObserver(() => {
      this.size = [view.root.clientWidth, view.root.clientHeight];
      if (this.area) this.update();
    }).observe(view.root);
  }

  /** The graph box in view now. @returns {Box} */
  visible() { return visibleBox(this.view.graph.view, this.size[0], this.size[1]); }

  /** After a pan or zoom: recull only when the view nears the rendered area's edge, or the area is far too big. */
  follow() {
    if (!this.area) return;
    const v = this.visible();
    const [w, h] = [v[2] - v[0], v[3] - v[1]];
    if (!inside(grow(v, w / 2, h / 2), this.area) || this.area[2] - this.area[0] > 6 * w) this.update();
  }

  /** Mark every node outside the view grown by one canvas size each way as `far` (and the rest not). */
  update() {
    const v = this.visible();
    const area = this.area = grow(v, v[2] - v[0], v[3] - v[1]);
    const { graph, nodeEls } = this.view;
    // All reads (one layout at most) before all writes.
    const boxes = [];
    for (const [id, e] of nodeEls) {
      const n = graph.nodes.get(id);
      if (n) boxes.push({ e, x: n.pos[0], y: n.pos[1], w: e.offsetWidth, h: e.offsetHeight, cw: e.clientWidth, ch: e.clientHeight });
    }
    for (const { e, x, y, w, h, cw, ch } of boxes) {
      // The node holding the focus stays rendered wherever it is: hiding it dropped the focus to the page,
      // so the next Backspace meant for a prompt (after a wheel zoom or a minimap jump) deleted the node.
      const far = (x > area[2] || x + w < area[0] || y > area[3] || y + h < area[1]) && !e.contains(document.activeElement);
      if (far === e.classList.contains("far")) continue;
      // Keeps its drawn size while skipped: the intrinsic size is the content box (a node has borders, no padding).
      if (far) e.style.containIntrinsicSize = `${cw}px ${ch}px`;
      e.classList.toggle("far", far);
    }
  }

  /** Render these nodes again now (they were moved, maybe into view). @param {Iterable<HTMLElement>} els */
  show(els) { for (const e of els) e.classList.remove("far"); }

  /**
   * These nodes' contents changed (run images, text outputs, errors): a culled one keeps the size it was
   * culled at, so it is rendered and culled again with its new size (else a node grown while culled
   * could reach into the view as an empty box of its old size, and the minimap and culling used the old one).
   * @param {Iterable<HTMLElement>} els
   */
  remeasure(els) {
    let any = false;
    for (const e of els) if (e.classList.contains("far")) { e.classList.remove("far"); any = true; }
    if (any && this.area) this.update();
  }
}
