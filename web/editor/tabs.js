// @ts-check
/**
 * Workflow tabs: several open workflows, one shown in the editor at a time. Each tab keeps its own
 * document and undo stack (the editor adopts the stack of the tab it shows), is autosaved to local
 * storage (an index plus one document per tab, so a reload restores every tab), and knows whether it
 * has changes since it was opened or saved: closing such a tab asks first.
 *
 * Undo stacks live in memory only (a reload restores documents, not their histories).
 */
import { History } from "./history.js";
import { toDocument } from "./convert.js";

const INDEX_KEY = "cascade-studio.tabs";
const DOC_PREFIX = "cascade-studio.tab.";

/** @typedef {{id: string, title: string, doc: any, history: History, clean: string}} Tab */
/**
 * @typedef {object} TabHooks
 * @property {() => Promise<any>} newDoc the document a new tab starts with
 * @property {(text: string, choices: {key: string, label: string, kind?: string}[]) => Promise<string>} ask
 * @property {(doc: any, title: string) => void} download save a document as a file
 * @property {boolean | number} frame how a new tab is framed: true fits the whole graph beside the panels; a number is the smallest zoom
 */

/** A short fingerprint of a document's content (its view excluded: panning is not a change). @param {any} doc */
export function contentKey(doc) {
  const { view, ...ui } = (doc && doc.ui) || {};
  const text = JSON.stringify({ ...doc, ui });
  let h = 0x811c9dc5; // FNV-1a: a stored fingerprint, not the whole document a second time
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return `${text.length}:${(h >>> 0).toString(36)}`;
}

export class Tabs {
  /** @param {HTMLElement} host @param {import("./editor.js").Editor} editor @param {TabHooks} hooks */
  constructor(host, editor, hooks) {
    this.host = host;
    this.editor = editor;
    this.hooks = hooks;
    /** @type {Tab[]} */
    this.tabs = [];
    this.active = "";
    this.serial = 0;
    editor.addEventListener("change", () => this.render());
  }

  /** The tab shown in the editor. */
  get current() { return /** @type {Tab} */ (this.tabs.find((t) => t.id === this.active)); }

  /** True when `tab` differs from what it was opened or last saved as. @param {Tab} tab */
  dirty(tab) {
    return contentKey(tab.id === this.active ? this.editor.document() : tab.doc) !== tab.clean;
  }

  /**
   * Reopen the autosaved tabs; without any, one tab with `fallback` (an older single autosave) or
   * a new document, framed (hooks.frame). @param {any} fallback
   */
  async restore(fallback) {
    let index = null;
    try { index = JSON.parse(localStorage.getItem(INDEX_KEY) || "null"); } catch { /* corrupt: start over */ }
    for (const t of (index && Array.isArray(index.tabs) ? index.tabs : [])) {
      let doc = null;
      try { doc = toDocument(JSON.parse(localStorage.getItem(DOC_PREFIX + t.id) || "null")); } catch { /* skip it */ }
      if (!doc || typeof t.id !== "string") continue;
      this.tabs.push({ id: t.id, title: String(t.title || "Untitled"), doc, history: new History(), clean: String(t.clean || "") });
      this.serial = Math.max(this.serial, Number(t.id.replace(/\D/g, "")) || 0);
    }
    if (!this.tabs.length) {
      await this.open(fallback || (await this.hooks.newDoc()), "Untitled", fallback ? false : this.hooks.frame);
      return;
    }
    const active = this.tabs.find((t) => t.id === index.active) || this.tabs[0];
    this.active = active.id;
    this.editor.show(active.doc, false, active.history);
    this.save();
  }

  /** Open `doc` in a new tab and show it. @param {any} doc @param {string} title @param {boolean | number} fit */
  async open(doc, title, fit = !(doc.ui && doc.ui.view)) {
    this.stash();
    const tab = { id: `t${++this.serial}`, title, doc, history: new History(), clean: "" };
    this.tabs.push(tab);
    this.active = tab.id;
    this.editor.show(doc, fit, tab.history);
    tab.clean = contentKey(this.editor.document());
    this.save();
  }

  /**
   * Replace the current tab's workflow as one undo step, titled `title`. A tab with unsaved
   * changes stays marked changed (its old work is only an undo away, and closing it must still ask).
   * @param {any} doc @param {string} title @param {boolean | number} fit
   */
  replace(doc, title, fit) {
    const tab = this.current;
    const wasClean = !this.dirty(tab);
    this.editor.replace(doc, fit);
    if (title) tab.title = title;
    // Over unsaved work, no content counts as saved (not even the file just opened) until a Save.
    tab.clean = wasClean ? contentKey(this.editor.document()) : "";
    this.save();
  }

  /** The current tab was saved to a file: it has no unsaved changes now. */
  markClean() {
    this.current.clean = contentKey(this.editor.document());
    this.save();
  }

  /** Show tab `id`, keeping the one shown now (document and undo stack) as it is. @param {string} id */
  switchTo(id) {
    const tab = this.tabs.find((t) => t.id === id);
    if (!tab || id === this.active) return;
    this.stash();
    this.active = id;
    this.editor.show(tab.doc, false, tab.history);
    this.save();
  }

  /**
   * Close tab `id`; one with unsaved changes asks first (save, discard or cancel). The last tab
   * closed leaves a new one. Resolves to whether it closed. @param {string} id
   */
  async close(id) {
    const tab = this.tabs.find((t) => t.id === id);
    if (!tab) return false;
    if (this.dirty(tab)) {
      const choice = await this.hooks.ask(`"${tab.title}" has unsaved changes. Close it anyway?`, [
        { key: "save", label: "Save and close", kind: "primary" },
        { key: "discard", label: "Close without saving", kind: "danger" },
        { key: "cancel", label: "Cancel" },
      ]);
      if (choice === "cancel") return false;
      if (choice === "save") this.hooks.download(tab.id === this.active ? this.editor.document() : tab.doc, tab.title);
    }
    const at = this.tabs.indexOf(tab);
    this.tabs.splice(at, 1);
    try { localStorage.removeItem(DOC_PREFIX + id); } catch { /* nothing to free */ }
    if (!this.tabs.length) {
      this.active = "";
      await this.open(await this.hooks.newDoc(), "Untitled", this.hooks.frame);
    } else if (id === this.active) {
      const next = this.tabs[Math.min(at, this.tabs.length - 1)];
      this.active = next.id;
      this.editor.show(next.doc, false, next.history);
    }
    this.save();
    return true;
  }

  /** Keep (and autosave) the shown workflow in its tab before another one takes the editor. */
  stash() {
    const tab = this.current;
    if (!tab) return;
    tab.doc = this.editor.document();
    tab.history = this.editor.history;
    try { localStorage.setItem(DOC_PREFIX + tab.id, JSON.stringify(tab.doc)); } catch { /* quota: kept in this page */ }
  }

  /** Autosave: the tab list and the shown tab's document (the others were saved when left). */
  save() {
    if (!this.current) return;
    this.stash();
    try {
      localStorage.setItem(INDEX_KEY, JSON.stringify({ active: this.active, tabs: this.tabs.map(({ id, title, clean }) => ({ id, title, clean })) }));
    } catch { /* quota: the tabs stay open in this page */ }
    this.render();
  }

  /** Draw the tab bar: one button per tab (• when changed, × to close) and + for a new tab. */
  render() {
    const items = this.tabs.map((tab) => {
      const el = document.createElement("div");
      el.className = "tab";
      el.dataset.tabId = tab.id;
      el.classList.toggle("active", tab.id === this.active);
      el.classList.toggle("dirty", this.dirty(tab));
      el.title = tab.title;
      const label = document.createElement("span");
      label.className = "tab-title";
      label.textContent = tab.title;
      const close = document.createElement("button");
      close.className = "tab-close";
      close.textContent = "×";
      close.title = "Close this workflow";
      close.addEventListener("click", (e) => { e.stopPropagation(); this.close(tab.id); });
      el.append(label, close);
      el.addEventListener("click", () => this.switchTo(tab.id));
      el.addEventListener("auxclick", (e) => { if (e.button === 1) this.close(tab.id); });
      return el;
    });
    const add = document.createElement("button");
    add.className = "tab-new";
    add.textContent = "+";
    add.title = "A new workflow in a new tab";
    add.addEventListener("click", async () => this.open(await this.hooks.newDoc(), "Untitled", this.hooks.frame));
    this.host.replaceChildren(...items, add);
  }
}
