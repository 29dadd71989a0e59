// @ts-check
/**
 * Renders the graph: node <div>s inside one CSS-transformed layer and links as SVG paths in the same
 * layer. Socket positions come from layout offsets (offsetLeft/Top), which ignore both our transform
 * and the browser zoom, so links stay aligned at any zoom level.
 */
import { createWidget, createSeedControl } from "./widgets.js";
import { isSeedInput } from "./graph.js";
import { createUploadButton, isImageUpload } from "../upload.js";
import { groupElements, missingValuesElement } from "./parts.js";
import { showNodeText } from "./node_text.js";
import { markMode } from "./modes.js";
import { markFlags, asInputs } from "./node_flags.js";
import { Links, socketPos, typeColor } from "./links.js";
import { drawReroutes, reroutePoints } from "./reroute_ui.js";
import { Culler } from "./cull.js";

/** @param {string} tag @param {string} cls @param {string} [text] */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class View {
  /** @param {HTMLElement} root @param {import("./editor.js").Editor} editor */
  constructor(root, editor) {
    this.root = root;
    this.editor = editor;
    // The dot grid is its own composited element moved by a transform (a moving background-position
    // would repaint the whole canvas on every pan frame).
    this.grid = el("div", "grid");
    // The pan/zoom transform sits on a wrapper with one child: Chromium lays out the element whose
    // transform changes again on each change, and when that was the layer (the parent of every node) it
    // took ~3 ms a pan move, half as much on the wrapper (bench trace). The layer holds nodes, notes, links.
    this.pan = el("div", "pan");
    this.layer = el("div", "layer");
    this.pan.append(this.layer);
    this.links = new Links(this.layer);
    this.box = el("div", "box-select");
    root.append(this.grid, this.pan, this.box);
    this.culler = new Culler(this);
    /** @type {Map<string, HTMLElement>} */
    this.nodeEls = new Map();
    /** Run-time decorations kept across re-renders. */
    this.status = { running: /** @type {string | null} */ (null), progress: /** @type {Record<string, number>} */ ({}),
      previews: /** @type {Record<string, string>} */ ({}), images: /** @type {Record<string, string[]>} */ ({}),
      errors: /** @type {Record<string, {message: string, inputs: Record<string, string>}>} */ ({}),
      texts: /** @type {Record<string, string[]>} */ ({}) };
  }

  get graph() { return this.editor.graph; }

  applyTransform() {
    const { offset, scale } = this.graph.view;
    this.pan.style.transform = `translate(${offset[0]}px, ${offset[1]}px) scale(${scale})`;
    // A custom property on the canvas restyles every node under it: set it only when the zoom changes,
    // so a pan touches nothing but the transforms of the layer and the grid.
    if (this.gridScale !== scale) {
      this.gridScale = scale;
      this.root.style.setProperty("--grid", `${20 * scale}px`);
    }
    const cell = 20 * scale;
    const mod = (/** @type {number} */ v) => ((v % cell) + cell) % cell - cell;
    this.grid.style.transform = `translate(${mod(offset[0])}px, ${mod(offset[1])}px)`;
    this.culler.follow(); // nodes coming near the view are rendered before this frame shows them
    this.editor.emit("drawn", "transform"); // the minimap follows (one redraw per frame)
  }

  /** Client (CSS pixel) coordinates to graph coordinates. @param {number} x @param {number} y */
  toGraph(x, y) {
    const r = this.root.getBoundingClientRect();
    const { offset, scale } = this.graph.view;
    return /** @type {[number, number]} */ ([(x - r.left - offset[0]) / scale, (y - r.top - offset[1]) / scale]);
  }

  /** Rebuild every node and note element from the model. */
  render() {
    this.culler.area = null; // new elements: cull them once they are laid out and linked (below)
    for (const e of this.layer.querySelectorAll(".node, .note, .group")) e.remove();
    this.nodeEls.clear();
    this.layer.append(...groupElements(this.graph.groups, this.editor.selectedGroup ?? -1));
    for (const m of this.graph.notes) this.layer.append(this.renderNote(m));
    for (const n of this.graph.nodes.values()) {
      const e = this.renderNode(n);
      this.nodeEls.set(n.id, e);
      this.layer.append(e);
    }
    this.applyTransform();
    this.applyStatus(); // draws the links: every node laid out once, so a culled one keeps its real size
    this.culler.update();
    this.editor.emit("drawn", "render");
  }

  /** @param {import("./graph.js").Note} m */
  renderNote(m) {
    const e = el("div", "note");
    e.dataset.noteId = m.id;
    e.classList.toggle("selected", this.editor.selection.has(m.id));
    Object.assign(e.style, { left: `${m.pos[0]}px`, top: `${m.pos[1]}px`, width: `${m.size[0]}px`, height: `${m.size[1]}px` });
    const head = el("div", "note-header drag-handle", "Note");
    const text = /** @type {HTMLTextAreaElement} */ (el("textarea", "note-text"));
    text.value = m.text;
    text.placeholder = "Write a note…";
    text.addEventListener("change", () => this.editor.commit(() => { m.text = text.value; }, false));
    e.append(head, text, el("div", "resize-handle"));
    return e;
  }

  /** @param {import("./graph.js").GNode} n */
  renderNode(n) {
    // A class the server lacks is drawn from its stand-in definition (sockets from the file).
    const def = this.graph.def(n.id);
    const missing = !this.graph.defs[n.type];
    const e = el("div", "node");
    e.dataset.nodeId = n.id;
    e.dataset.type = n.type;
    e.classList.toggle("selected", this.editor.selection.has(n.id));
    e.classList.toggle("missing", missing);
    e.classList.toggle("output-node", !!def && def.outputNode);
    markMode(e, n);
    markFlags(e, n);
    Object.assign(e.style, { left: `${n.pos[0]}px`, top: `${n.pos[1]}px` });
    if (n.size) Object.assign(e.style, { width: `${n.size[0]}px`, minHeight: `${n.size[1]}px` });
    const head = el("div", "node-header drag-handle");
    const title = el("span", "node-title", n.title || (def ? def.displayName : n.type));
    title.title = def && !missing ? `${def.name} — ${def.description}` : `Missing class ${n.type}: not in /object_info`;
    head.append(title);
    if (missing) head.append(el("span", "missing-badge", "missing class"));
    head.append(el("span", "node-id", `#${n.id}`));
    const bar = el("div", "node-progress");
    bar.append(el("div", "bar"));
    e.append(head, bar);
    if (!def) return e; // only a placeholder while pasting has no class
    const io = el("div", "node-io");
    const ins = el("div", "inputs");
    const outs = el("div", "outputs");
    // Widgets the user shows "as input only" (ui.as_input) are drawn as plain sockets; their value stays.
    const asInput = asInputs(n);
    for (const inp of def.inputs.filter((i) => !i.widget || asInput.has(i.name))) ins.append(this.inputRow(n, { ...inp, widget: false }));
    def.outputs.forEach((o, i) => {
      const row = el("div", "socket-row out");
      const s = this.socket("out", o.type, n.id);
      s.dataset.output = String(i);
      row.append(el("span", "socket-label", o.name), s);
      outs.append(row);
    });
    io.append(ins, outs);
    e.append(io);
    const widgets = el("div", "widgets");
    for (const inp of def.inputs.filter((i) => i.widget && !asInput.has(i.name))) widgets.append(this.inputRow(n, inp));
    e.append(widgets);
    if (missing) e.append(missingValuesElement(n));
    e.append(el("div", "node-error-text"), el("div", "node-text"), el("div", "node-images"), el("div", "resize-handle"));
    return e;
  }

  /** A socket dot. @param {"in" | "out"} dir @param {string} type @param {string} nodeId */
  socket(dir, type, nodeId) {
    const s = el("span", `socket ${dir}`);
    s.dataset.socketType = type;
    s.dataset.nodeId = nodeId;
    s.style.setProperty("--socket-color", typeColor(type));
    s.title = type;
    return s;
  }

  /** One input row: socket plus name, plus its widget (disabled and marked "driven" when linked). */
  inputRow(/** @type {import("./graph.js").GNode} */ n, /** @type {import("./graph.js").InputDef} */ inp) {
    const row = el("div", inp.widget ? "widget-row" : "socket-row in");
    row.dataset.input = inp.name;
    const s = this.socket("in", inp.type, n.id);
    s.dataset.input = inp.name;
    const link = n.links[inp.name];
    if (link) s.classList.add("linked");
    row.append(s, el("label", "socket-label", inp.name + (inp.optional ? "?" : "")));
    if (inp.opts.tooltip) row.title = inp.opts.tooltip;
    if (!inp.widget) return row;
    if (link) {
      row.classList.add("driven");
      const src = this.graph.nodes.get(link[0]);
      const srcName = src ? (src.title || this.graph.defs[src.type]?.displayName || src.type) : link[0];
      row.append(el("span", "driven-by", `← ${srcName}`));
      return row;
    }
    const setValue = (/** @type {any} */ v) => this.editor.commit(() => this.graph.setValue(n.id, inp.name, v), false);
    row.append(createWidget(inp, n.values[inp.name], setValue));
    if (isImageUpload(inp)) {
      row.classList.add("stacked");
      row.append(createUploadButton(inp, (name) => this.editor.commit(() => this.graph.setValue(n.id, inp.name, name)),
        (msg) => this.editor.toast(msg, "error")));
    }
    if (isSeedInput(inp)) {
      row.classList.add("stacked");
      row.append(createSeedControl(n.seedControl || "fixed", (mode) => this.editor.commit(() => { n.seedControl = mode; }, false)));
    }
    return row;
  }

  /** Centre of a socket element in graph coordinates. @param {HTMLElement} s */
  socketPos(s) { return socketPos(s); }

  /** @param {string} nodeId @param {string} input */
  inputSocket(nodeId, input) {
    return /** @type {HTMLElement | null} */ (this.nodeEls.get(nodeId)?.querySelector(`.socket.in[data-input="${CSS.escape(input)}"]`) || null);
  }

  /** @param {string} nodeId @param {number} index */
  outputSocket(nodeId, index) {
    return /** @type {HTMLElement | null} */ (this.nodeEls.get(nodeId)?.querySelector(`.socket.out[data-output="${index}"]`) || null);
  }

  drawLinks() {
    this.links.draw(this.graph.linkList(), (n, i) => this.outputSocket(n, i), (n, i) => this.inputSocket(n, i), reroutePoints(this.graph));
    drawReroutes(this);
  }

  /**
   * Move node/note elements to their model positions (cheap path used while dragging). With `ids`, only
   * those items move and only the links touching them are redrawn: a drag in a 500-node graph then
   * costs what the dragged nodes cost, not what the whole graph costs.
   * @param {Iterable<string>} [ids] node and note ids; all of them when omitted
   */
  updatePositions(ids) {
    if (!ids || !this.links.byNode) {
      for (const [id, e] of this.nodeEls) {
        const n = this.graph.nodes.get(id);
        if (n) Object.assign(e.style, { left: `${n.pos[0]}px`, top: `${n.pos[1]}px` });
      }
      for (const e of /** @type {NodeListOf<HTMLElement>} */ (this.layer.querySelectorAll(".note"))) {
        const m = this.graph.notes.find((x) => x.id === e.dataset.noteId);
        if (m) Object.assign(e.style, { left: `${m.pos[0]}px`, top: `${m.pos[1]}px` });
      }
      return this.drawLinks();
    }
    const moved = [];
    for (const id of ids) {
      const n = this.graph.nodes.get(id);
      const e = n ? this.nodeEls.get(id) : /** @type {HTMLElement | null} */ (this.layer.querySelector(`.note[data-note-id="${CSS.escape(id)}"]`));
      const it = n || this.graph.notes.find((x) => x.id === id);
      if (!e || !it) continue;
      Object.assign(e.style, { left: `${it.pos[0]}px`, top: `${it.pos[1]}px` });
      this.culler.show([e]); // a culled node dragged along with the selection may come into view
      moved.push(id);
    }
    this.links.redraw(moved);
  }

  /** Show or hide the link being dragged. @param {[number, number] | null} a @param {[number, number]} [b] */
  drawDragLink(a, b, type = "*", ok = true) { this.links.drag(a, b, type, ok); }

  markSelection() {
    for (const e of /** @type {NodeListOf<HTMLElement>} */ (this.layer.querySelectorAll(".node, .note")))
      e.classList.toggle("selected", this.editor.selection.has(e.dataset.nodeId || e.dataset.noteId || ""));
  }

  /** Re-apply run decorations (running node, progress, previews, results, errors) to the elements. */
  applyStatus() {
    const s = this.status;
    const changed = []; // culled nodes whose contents changed (cull.js measures them again)
    for (const [id, e] of this.nodeEls) {
      e.classList.toggle("running", s.running === id);
      const bar = /** @type {HTMLElement} */ (e.querySelector(".node-progress .bar"));
      bar.style.width = `${Math.round((s.progress[id] ?? 0) * 100)}%`;
      e.classList.toggle("has-progress", id in s.progress);
      const imgs = /** @type {HTMLElement | null} */ (e.querySelector(".node-images"));
      const urls = s.previews[id] ? [s.previews[id]] : s.images[id] || [];
      // Rebuild only when the pictures change, so progress updates do not make results flicker.
      if (imgs && imgs.dataset.urls !== urls.join(" ")) {
        imgs.dataset.urls = urls.join(" ");
        imgs.replaceChildren(...urls.map((u) => {
          const img = /** @type {HTMLImageElement} */ (el("img", s.previews[id] ? "preview" : "result"));
          img.src = u;
          img.addEventListener("load", () => { this.culler.remeasure([e]); this.drawLinks(); }, { once: true });
          return img;
        }));
      }
      const err = s.errors[id];
      const sig = `${urls.join(" ")}\n${(s.texts[id] || []).join("\n")}\n${err ? err.message + JSON.stringify(err.inputs) : ""}`;
      if (e.dataset.status !== sig) { e.dataset.status = sig; changed.push(e); }
      showNodeText(e, s.texts[id]);
      e.classList.toggle("error", !!err);
      const text = e.querySelector(".node-error-text");
      if (text) text.textContent = err ? err.message : "";
      for (const row of /** @type {NodeListOf<HTMLElement>} */ (e.querySelectorAll("[data-input]"))) {
        if (row.classList.contains("socket")) continue;
        const msg = err && err.inputs[row.dataset.input || ""];
        row.classList.toggle("error", !!msg);
        if (msg) row.title = msg;
      }
    }
    this.culler.remeasure(changed);
    this.drawLinks();
  }
}
