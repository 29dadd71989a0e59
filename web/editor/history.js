// @ts-check
/**
 * Undo/redo as a stack of whole-document snapshots (JSON strings). Graphs are small, so snapshots
 * are cheap and can never drift out of sync with the model the way per-operation inverses can.
 */
export class History {
  constructor(limit = 200) {
    this.limit = limit;
    /** @type {string[]} */
    this.stack = [];
    this.index = -1;
  }

  /** Start over with `doc` as the only state. @param {any} doc */
  reset(doc) {
    this.stack = [JSON.stringify(doc)];
    this.index = 0;
  }

  /** Record `doc` as the newest state (dropping any redo branch); returns false if nothing changed. */
  push(/** @type {any} */ doc) {
    const snap = JSON.stringify(doc);
    if (this.stack[this.index] === snap) return false;
    this.stack = this.stack.slice(0, this.index + 1);
    this.stack.push(snap);
    if (this.stack.length > this.limit) this.stack.shift();
    this.index = this.stack.length - 1;
    return true;
  }

  get canUndo() { return this.index > 0; }
  get canRedo() { return this.index < this.stack.length - 1; }

  /** The previous state, or null. */
  undo() {
    if (!this.canUndo) return null;
    this.index--;
    return JSON.parse(this.stack[this.index]);
  }

  /** The next state, or null. */
  redo() {
    if (!this.canRedo) return null;
    this.index++;
    return JSON.parse(this.stack[this.index]);
  }
}
