// @ts-check
/**
 * The node library: a side panel listing every node class from /object_info as a tree of categories
 * ("Stable Cascade/sampling" nests under "Stable Cascade"), with a search box using the same fuzzy
 * ranking as the double-click search. Click an entry to add the node at the centre of the view, or
 * drag it onto the canvas to add it where it is dropped; either is one undo step. It redraws when the
 * definitions change (↻ Lists, or the window getting the focus back).
 */
import { rank } from "./search.js";

/** @typedef {import("./graph.js").NodeDef} NodeDef */
/** @typedef {{name: string, path: string, children: Map<string, Branch>, defs: NodeDef[]}} Branch */

/** Open unless this local-storage key says "off"; closed on a first visit. */
export const STORAGE_KEY = "cascade-studio.library";
/** Pointer travel (CSS px) that turns a press on an entry into a drag. */
const DRAG_PX = 4;

/**
 * The category tree of `defs`: branches by "/"-separated category, classes sorted by display name.
 * A class without a category sits at the root. @param {NodeDef[]} defs @returns {Branch}
 */
export function categoryTree(defs) {
  /** @type {Branch} */
  const root = { name: "", path: "", children: new Map(), defs: [] };
  for (const def of [...defs].sort((a, b) => a.displayName.localeCompare(b.displayName))) {
    let at = root;
    for (const part of (def.category || "").split("/").map((p) => p.trim()).filter(Boolean)) {
      const path = at.path ? `${at.path}/${part}` : part;
      if (!at.children.has(part)) at.children.set(part, { name: part, path, children: new Map(), defs: [] });
      at = /** @type {Branch} */ (at.children.get(part));
    }
    at.defs.push(def);
  }
  return root;
}

/** How many classes a branch holds, nested ones included. @param {Branch} b @returns {number} */
function count(b) {
  let n = b.defs.length;
  for (const c of b.children.values()) n += count(c);
  return n;
}

export class Library {
  /** @param {import("./editor.js").Editor} editor @param {HTMLElement} panel the (empty) side panel element */
  constructor(editor, panel) {
    this.editor = editor;
    this.panel = panel;
    /** @type {Set<string>} category paths the user opened (kept across redraws and searches) */
    this.open = new Set();
    this.search = Object.assign(document.createElement("input"), { type: "search", placeholder: "Search nodes…", className: "library-search" });
    this.search.setAttribute("aria-label", "Search the node library");
    this.list = Object.assign(document.createElement("div"), { className: "library-list" });
    const head = Object.assign(document.createElement("div"), { className: "panel-head" });
    head.append(Object.assign(document.createElement("h2"), { textContent: "Nodes" }));
    panel.append(head, this.search, this.list);
    /** True from an add until the search text is edited: Ctrl+Z then undoes the graph, not the typing. */
    this.justAdded = false;
    this.search.addEventListener("input", () => { this.justAdded = false; this.draw(); });
    this.search.addEventListener("keydown", (e) => this.onSearchKey(e));
    editor.addEventListener("defschange", () => this.draw());
    this.installDrag();
    this.show(localStorage.getItem(STORAGE_KEY) === "on");
  }

  get shown() { return !this.panel.hidden; }

  /**
   * Keys in the search box: Enter adds the first hit and keeps the focus here (to add more);
   * Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y undo and redo the graph while the text is unchanged since that
   * add (else they edit the text, as in any field); Escape clears the search and gives the focus
   * back to the canvas. Other keys are typing, never canvas shortcuts. @param {KeyboardEvent} e
   */
  onSearchKey(e) {
    e.stopPropagation();
    const ctrl = e.ctrlKey || e.metaKey, key = e.key.toLowerCase();
    const first = /** @type {HTMLElement | null} */ (this.list.querySelector(".library-item"));
    if (e.key === "Enter" && first) this.addAtCentre(first.dataset.type || "");
    else if (e.key === "Escape") {
      this.search.value = "";
      this.draw();
      this.editor.root.focus({ preventScroll: true });
    } else if (ctrl && !e.altKey && this.justAdded && (key === "z" || key === "y")) {
      e.preventDefault(); // not the field's own text undo
      if (key === "y" || e.shiftKey) this.editor.redo(); else this.editor.undo();
    }
  }

  /** Show or hide the panel (remembered across reloads). @param {boolean} on */
  show(on) {
    this.panel.hidden = !on;
    localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
    if (on) this.draw();
  }

  toggle() {
    this.show(!this.shown);
    if (this.shown) this.search.focus();
  }

  /** Rebuild the list: the category tree, or ranked matches while the search box has text. */
  draw() {
    const defs = Object.values(this.editor.graph.defs);
    const q = this.search.value.trim();
    if (q) {
      const hits = rank(defs.map((def) => ({ def })), q).map((c) => this.item(c.def, true));
      this.list.replaceChildren(...(hits.length ? hits : [Object.assign(document.createElement("div"), { className: "library-empty", textContent: "No matching nodes" })]));
      return;
    }
    const tree = categoryTree(defs);
    this.list.replaceChildren(...this.branchChildren(tree));
  }

  /** A branch's sub-categories (as <details>) then its classes. @param {Branch} b @returns {HTMLElement[]} */
  branchChildren(b) {
    const out = [];
    for (const c of [...b.children.values()].sort((x, y) => x.name.localeCompare(y.name))) {
      const d = document.createElement("details");
      d.className = "library-category";
      d.dataset.category = c.path;
      d.open = this.open.has(c.path);
      const s = document.createElement("summary");
      s.append(c.name, Object.assign(document.createElement("span"), { className: "library-count", textContent: String(count(c)) }));
      d.append(s, ...this.branchChildren(c));
      d.addEventListener("toggle", () => { if (d.open) this.open.add(c.path); else this.open.delete(c.path); });
      out.push(d);
    }
    return out.concat(b.defs.map((def) => this.item(def, false)));
  }

  /** One draggable entry. @param {NodeDef} def @param {boolean} withCategory */
  item(def, withCategory) {
    const e = document.createElement("div");
    e.className = "library-item";
    e.dataset.type = def.name;
    e.title = `${def.name}${def.description ? ` — ${def.description}` : ""}\nClick: add at the centre of the view · drag: add where dropped`;
    e.append(Object.assign(document.createElement("span"), { className: "library-name", textContent: def.displayName }));
    if (withCategory) e.append(Object.assign(document.createElement("span"), { className: "search-category", textContent: def.category }));
    return e;
  }

  /**
   * Add a node of class `type` centred in the visible canvas (one undo step). Where a node already
   * sits at that spot (Enter pressed again, as the search box invites) it steps 30 px down-right,
   * as repeated pastes do, instead of hiding the one before. @param {string} type
   */
  addAtCentre(type) {
    const r = this.editor.root.getBoundingClientRect();
    const [x, y] = this.editor.view.toGraph(r.left + r.width / 2, r.top + r.height / 2);
    let pos = /** @type {[number, number]} */ ([Math.round(x - 130), Math.round(y - 40)]);
    const taken = () => [...this.editor.graph.nodes.values()].some((n) => n.pos[0] === pos[0] && n.pos[1] === pos[1]);
    for (let i = 0; i < 1000 && taken(); i++) pos = [pos[0] + 30, pos[1] + 30];
    return this.add(type, pos);
  }

  /** Add a node of class `type` at `pos` (one undo step). @param {string} type @param {[number, number]} pos */
  add(type, pos) {
    this.justAdded = true;
    return this.editor.addNode(type, pos);
  }

  /** Press on an entry: a click adds at the centre; a drag shows a ghost and adds where it is dropped on the canvas. */
  installDrag() {
    /** @type {{type: string, x: number, y: number, ghost: HTMLElement | null} | null} */
    let press = null;
    this.list.addEventListener("pointerdown", (e) => {
      const item = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest(".library-item"));
      if (!item || e.button !== 0) return;
      e.preventDefault();
      this.list.setPointerCapture(e.pointerId);
      press = { type: item.dataset.type || "", x: e.clientX, y: e.clientY, ghost: null };
    });
    this.list.addEventListener("pointermove", (e) => {
      if (!press) return;
      if (!press.ghost && Math.hypot(e.clientX - press.x, e.clientY - press.y) < DRAG_PX) return;
      if (!press.ghost) {
        press.ghost = Object.assign(document.createElement("div"), { className: "library-ghost", textContent: this.editor.graph.defs[press.type]?.displayName || press.type });
        document.body.append(press.ghost);
      }
      Object.assign(press.ghost.style, { left: `${e.clientX + 8}px`, top: `${e.clientY + 8}px` });
    });
    const end = (/** @type {PointerEvent} */ e) => {
      if (!press) return;
      const p = press;
      press = null;
      // The canvas takes the focus, so Delete, Ctrl+Z and the like act on the node just added.
      if (!p.ghost) {
        if (e.type === "pointerup") { this.addAtCentre(p.type); this.editor.root.focus({ preventScroll: true }); }
        return;
      }
      p.ghost.remove();
      const under = document.elementFromPoint(e.clientX, e.clientY);
      // Only a drop on the canvas itself adds (not on the panels, the toolbar or the minimap).
      if (e.type === "pointerup" && under && this.editor.root.contains(under)) {
        const [x, y] = this.editor.view.toGraph(e.clientX, e.clientY);
        this.add(p.type, [Math.round(x), Math.round(y)]);
        this.editor.root.focus({ preventScroll: true });
      }
    };
    this.list.addEventListener("pointerup", end);
    this.list.addEventListener("pointercancel", end);
  }
}
