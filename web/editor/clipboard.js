// @ts-check
/**
 * Copy/paste of the selection as a JSON fragment of our document. The system clipboard carries it
 * between tabs and windows; localStorage is the fallback when the page may not touch the clipboard.
 * A copy carries the groups selected with their nodes and the reroute points of the copied links
 * (clip_model.js); a paste is one undo step.
 */
import { fragment, toDocument } from "./convert.js";
import { addExtras, cleanFragment, copySet, fragmentCorner, pasteAt } from "./clip_model.js";
import { itemBoxes } from "./groups.js";

const STORAGE_KEY = "cascade-studio.clipboard";
const KIND = "cascade-studio/fragment";

/** Attach copy/cut/paste handlers for `editor` to `target` (the document). */
export function installClipboard(/** @type {import("./editor.js").Editor} */ editor, /** @type {Document} */ target) {
  let pasteHandled = false;
  /** Ctrl+Shift+V: the next paste keeps links from nodes outside the pasted set. */
  let keepLinks = false;
  /** Where the last paste landed and how often in a row: a paste at the same spot steps aside. */
  let last = { at: [NaN, NaN], count: 0 };
  const editing = () => {
    const a = /** @type {HTMLElement | null} */ (target.activeElement);
    return !!a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT" || a.isContentEditable);
  };

  /**
   * What Ctrl+C takes now (copySet: the selection, or the selected group with what lies in it).
   * @returns {{nodes: string[], notes: string[], groups: number[]} | null} null when nothing
   */
  const picked = () => {
    const set = copySet(editor.graph.groups, editor.selectedGroup, itemBoxes(editor), editor.selection);
    const nodes = set.ids.filter((id) => editor.graph.nodes.has(id));
    const notes = set.ids.filter((id) => editor.graph.notes.some((m) => m.id === id));
    return nodes.length || notes.length || set.groups.length ? { nodes, notes, groups: set.groups } : null;
  };

  /** Copy the selection; returns the fragment text (or null when nothing is selected). */
  const copy = (what = picked()) => {
    if (!what) return null;
    const text = JSON.stringify(addExtras(editor.graph, fragment(editor.graph, what.nodes, what.notes), what.groups));
    try { localStorage.setItem(STORAGE_KEY, text); } catch { /* storage full or disabled: clipboard still works */ }
    return text;
  };

  /** Cut: copy, then remove what was copied (nodes, notes and groups) as one undo step. */
  const cut = () => {
    const what = picked();
    const text = copy(what);
    if (!what) return null;
    editor.commit(() => {
      for (const id of what.nodes) editor.graph.removeNode(id);
      for (const id of what.notes) editor.graph.removeNote(id);
      editor.graph.groups = editor.graph.groups.filter((_, i) => !what.groups.includes(i));
      editor.selection.clear();
      editor.selectedGroup = -1;
    });
    return text;
  };

  /**
   * Paste fragment text (ours, a whole document or an API prompt) at `editor.pointer` (the top-left
   * corner of what it adds lands there: clip_model.js pasteAt); repeated
   * pastes without a pointer move are offset by 30 px each. Returns true when it was ours.
   */
  const paste = (/** @type {string} */ text, withLinks = false) => {
    let obj;
    try { obj = JSON.parse(text); } catch { return false; }
    // Malformed entries are dropped first, so a paste never stops half-way through the graph.
    const frag = cleanFragment(obj && obj.kind === KIND ? obj : toDocument(obj));
    if (!frag || !fragmentCorner(frag)) return false;
    const at = editor.pointer;
    last = at[0] === last.at[0] && at[1] === last.at[1] ? { at, count: last.count + 1 } : { at: [...at], count: 0 };
    const step = 30 * last.count;
    editor.commit(() => {
      const added = pasteAt(editor.graph, frag, [at[0] + step, at[1] + step], withLinks);
      editor.selection = new Set([...added.nodes, ...added.notes]);
      editor.selectedGroup = -1;
    });
    return true;
  };

  target.addEventListener("copy", (e) => {
    if (editing()) return;
    const text = copy();
    if (text && e.clipboardData) {
      e.clipboardData.setData("text/plain", text);
      e.preventDefault();
    }
  });
  target.addEventListener("cut", (e) => {
    if (editing()) return;
    const text = cut();
    if (text && e.clipboardData) {
      e.clipboardData.setData("text/plain", text);
      e.preventDefault();
    }
  });
  target.addEventListener("paste", (e) => {
    if (editing()) return;
    pasteHandled = true;
    const text = e.clipboardData ? e.clipboardData.getData("text/plain") : "";
    const links = keepLinks;
    keepLinks = false;
    if (text && paste(text, links)) e.preventDefault();
    else pasteStored(links);
  });
  /** Paste the last fragment copied in this browser (localStorage). */
  const pasteStored = (withLinks = false) => {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored) paste(stored, withLinks);
  };
  // Some browsers fire no paste event without clipboard permission: fall back to localStorage.
  target.addEventListener("keydown", (e) => {
    if (!(e.ctrlKey || e.metaKey) || editing()) return;
    const key = e.key.toLowerCase(); // "V" while Shift is held
    if (key === "c") copy();
    if (key === "v") {
      pasteHandled = false;
      keepLinks = e.shiftKey;
      setTimeout(() => { if (!pasteHandled) { pasteStored(keepLinks); keepLinks = false; } }, 60);
    }
  });
  return { copy, paste, pasteStored };
}
