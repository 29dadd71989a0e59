// @ts-check
/**
 * Undo/redo as a stack of whole-document snapshots (JSON strings). Graphs are small, so snapshots
 * are cheap and can never drift out of sync with the model the way per-operation inverses can.
 *
 * A step may carry views (pan/zoom): a replaced workflow (New, Open…, a drop, History → Load) is one
 * step, and undoing it should show the old graph where it was, not the old graph framed for the new.
 */
export class History {
  constructor(limit = 200) {
    this.limit = limit;
    /** @type {string[]} */
    this.stack = [];
    /** Views around the step that led to each entry (null: an ordinary edit keeps the view). @type {({before: any, after: any} | null)[]} */
    this.views = [];
    this.index = -1;
    /** The view to show after the latest undo/redo, or null to keep the current one. @type {any} */
    this.lastView = null;
  }

  /** Start over with `doc` as the only state. @param {any} doc */
  reset(doc) {
    this.stack = [JSON.stringify(doc)];
    this.views = [null];
    this.index = 0;
  }

  /**
   * Record `doc` as the newest state (dropping any redo branch); returns false if nothing changed.
   * @param {any} doc @param {{before: any, after: any} | null} views views around a replacement step
   */
  push(doc, views = null) {
    const snap = JSON.stringify(doc);
    if (this.stack[this.index] === snap) return false;
    this.stack = this.stack.slice(0, this.index + 1);
    this.views = this.views.slice(0, this.index + 1);
    this.stack.push(snap);
    this.views.push(views);
    if (this.stack.length > this.limit) { this.stack.shift(); this.views.shift(); }
    this.index = this.stack.length - 1;
    return true;
  }

  get canUndo() { return this.index > 0; }
  get canRedo() { return this.index < this.stack.length - 1; }

  /** The previous state, or null; `lastView` tells the view to go back to. */
  undo() {
    if (!this.canUndo) return null;
    const views = this.views[this.index];
    this.lastView = views ? views.before : null;
    this.index--;
    return JSON.parse(this.stack[this.index]);
  }

  /** The next state, or null; `lastView` tells the view to go to. */
  redo() {
    if (!this.canRedo) return null;
    this.index++;
    const views = this.views[this.index];
    this.lastView = views ? views.after : null;
    return JSON.parse(this.stack[this.index]);
  }
}
