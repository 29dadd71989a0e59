// Link drawing: socket positions, curves, the link layer and the link being dragged.
// Kept apart from view.js (nodes and widgets) so each reads in one sitting.

const SVG = "http://www.w3.org/2000/svg";

/** Stable colour per socket type, so the same type always looks the same without a type list. */
export function typeColor(/** @type {string} */ type) {
  let h = 0;
  for (const c of String(type)) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h}, 65%, 62%)`;
}

/** Bezier path between two graph points. @param {[number, number]} a @param {[number, number]} b */
export function curve(a, b) {
  const dx = Math.max(40, Math.abs(b[0] - a[0]) * 0.5);
  return `M${a[0]},${a[1]} C${a[0] + dx},${a[1]} ${b[0] - dx},${b[1]} ${b[0]},${b[1]}`;
}

/** Path from `a` through the points `via` to `b`, one curve a segment (as ComfyUI's reroutes). */
export function curveThrough(/** @type {[number, number]} */ a, /** @type {[number, number][]} */ via, /** @type {[number, number]} */ b) {
  if (!via.length) return curve(a, b);
  const pts = [a, ...via, b];
  let d = `M${a[0]},${a[1]}`;
  for (let i = 1; i < pts.length; i++) {
    const c = curve(pts[i - 1], pts[i]);
    d += c.slice(c.indexOf(" C"));
  }
  return d;
}

/** Centre of a socket element in graph coordinates (offsets up to its node, then the node's). @param {HTMLElement} s */
export function socketPos(s) {
  // A collapsed node hides its sockets: its links meet the title bar's left (inputs) and right (outputs) edges.
  const node = /** @type {HTMLElement | null} */ (s.closest(".node.collapsed"));
  if (node) {
    const head = /** @type {HTMLElement} */ (node.firstElementChild);
    return /** @type {[number, number]} */ ([node.offsetLeft + (s.classList.contains("out") ? node.offsetWidth : 0),
      node.offsetTop + node.clientTop + head.offsetHeight / 2]);
  }
  let x = s.offsetWidth / 2;
  let y = s.offsetHeight / 2;
  /** @type {HTMLElement | null} */
  let cur = s;
  while (cur && !cur.classList.contains("node")) {
    x += cur.offsetLeft;
    y += cur.offsetTop;
    cur = /** @type {HTMLElement | null} */ (cur.offsetParent);
  }
  if (cur) {
    x += cur.offsetLeft + cur.clientLeft;
    y += cur.offsetTop + cur.clientTop;
  }
  return /** @type {[number, number]} */ ([x, y]);
}

/** @typedef {{path: SVGPathElement, from: HTMLElement, to: HTMLElement, via: [number, number][]}} LinkEntry */

export class Links {
  /** The two SVG layers appended to `layer`: links under the nodes, the dragged link above them. @param {HTMLElement} layer */
  constructor(layer) {
    this.svg = document.createElementNS(SVG, "svg");
    this.svg.classList.add("links");
    this.group = document.createElementNS(SVG, "g");
    this.svg.append(this.group);
    this.dragPath = document.createElementNS(SVG, "path");
    this.dragPath.classList.add("drag-link");
    // The link being dragged lives in its own SVG stacked above the nodes, so it is never hidden.
    const dragSvg = document.createElementNS(SVG, "svg");
    dragSvg.classList.add("links", "drag");
    dragSvg.append(this.dragPath);
    layer.append(this.svg, dragSvg);
    /** @type {Map<string, LinkEntry[]> | null} link paths by the ids of the nodes they touch; set by draw */
    this.byNode = null;
  }

  /**
   * Rebuild every link path. @param {Iterable<{src: string, index: number, dst: string, input: string, type: string}>} links
   * @param {(node: string, index: number) => HTMLElement | null} output @param {(node: string, input: string) => HTMLElement | null} input
   * @param {(node: string, input: string) => [number, number][]} [via] reroute points of a link, source first
   */
  draw(links, output, input, via = () => []) {
    const paths = [];
    const byNode = new Map();
    this.byNode = byNode;
    for (const l of links) {
      const from = output(l.src, l.index);
      const to = input(l.dst, l.input);
      if (!from || !to) continue;
      const p = document.createElementNS(SVG, "path");
      const points = via(l.dst, l.input);
      p.setAttribute("d", curveThrough(socketPos(from), points, socketPos(to)));
      p.setAttribute("stroke", typeColor(l.type));
      p.classList.add("link");
      p.dataset.link = `${l.src}:${l.index}->${l.dst}.${l.input}`;
      Object.assign(p.dataset, { dst: l.dst, input: l.input }); // ids may hold ":" and ".": not parsed back
      paths.push(p);
      const entry = { path: p, from, to, via: points };
      for (const id of new Set([l.src, l.dst])) {
        if (!byNode.has(id)) byNode.set(id, []);
        byNode.get(id).push(entry);
      }
    }
    this.group.replaceChildren(...paths);
  }

  /** Reshape only the links touching `ids` (after their nodes moved). @param {Iterable<string>} ids */
  redraw(ids) {
    const moved = new Set();
    for (const id of ids) for (const link of this.byNode?.get(id) || []) moved.add(link);
    // All reads (socketPos) before all writes: one layout per move, not one per link.
    const curves = [...moved].map((l) => curveThrough(socketPos(l.from), l.via, socketPos(l.to)));
    [...moved].forEach((l, i) => l.path.setAttribute("d", curves[i]));
  }

  /** Show or hide the link being dragged. @param {[number, number] | null} a @param {[number, number]} [b] */
  drag(a, b, type = "*", ok = true) {
    if (!a || !b) return this.dragPath.setAttribute("d", "");
    this.dragPath.setAttribute("d", curve(a, b));
    this.dragPath.setAttribute("stroke", ok ? typeColor(type) : "#e05555");
    this.dragPath.classList.toggle("refused", !ok);
  }
}
