// @ts-check
/**
 * Model lists without a page reload: re-read GET /object_info and, when it changed (a weights file
 * downloaded or copied in, an input image added), update the node definitions in place and redraw
 * the nodes. Values stay as they are (a value no longer offered stays, flagged as missing); the
 * undo history is not touched. Runs from a toolbar button and when the window gets the focus back.
 */
import { parseObjectInfo } from "./editor/graph.js";

/** @typedef {import("./editor/editor.js").Editor} Editor */
/** @typedef {import("./api.js").Api} Api */

/** Focus events closer together than this (ms) share one request. */
export const FOCUS_THROTTLE_MS = 1500;

export class DefsRefresher {
  /** @param {Editor} editor @param {Api} api @param {any} [initialInfo] the /object_info the page started with */
  constructor(editor, api, initialInfo) {
    this.editor = editor;
    this.api = api;
    this.last = initialInfo ? JSON.stringify(initialInfo) : "";
    this.lastFocus = 0;
    /** @type {Promise<boolean> | null} */
    this.running = null;
  }

  /**
   * Re-fetch the definitions; resolves true when they changed (and the nodes were redrawn).
   * Throws when the server cannot be reached.
   * @returns {Promise<boolean>}
   */
  refresh() {
    if (!this.running) this.running = this.apply().finally(() => { this.running = null; });
    return this.running;
  }

  async apply() {
    const info = await this.api.objectInfo();
    const key = JSON.stringify(info);
    if (key === this.last) return false;
    this.last = key;
    // In place: the same object is shared by the graph and by app.js (the image loader lookup).
    const defs = this.editor.graph.defs;
    const fresh = parseObjectInfo(info);
    for (const name of Object.keys(defs)) if (!(name in fresh)) delete defs[name];
    Object.assign(defs, fresh);
    this.editor.view.render();
    this.editor.emit("defschange", { classes: Object.keys(fresh).length });
    return true;
  }

  /** Refresh when the window regains focus (files may have changed meanwhile), at most every FOCUS_THROTTLE_MS. */
  installFocus(/** @type {Window} */ win = window) {
    win.addEventListener("focus", () => {
      const now = Date.now();
      if (now - this.lastFocus < FOCUS_THROTTLE_MS) return;
      this.lastFocus = now;
      this.refresh().catch(() => { /* offline: the connection dot says so already */ });
    });
  }
}
