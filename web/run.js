// @ts-check
/**
 * Running workflows: queue the document, show validation errors on nodes and inputs, and turn the
 * /ws event stream into node decorations (running highlight, progress bar, live previews, results).
 */
import { isSeedInput } from "./editor/graph.js";
import { nextSeed } from "./editor/widgets.js";
import { outputTexts } from "./editor/node_text.js";
import { clip, errorsByNode, summariseRefusal } from "./errors.js";

/** @typedef {import("./editor/editor.js").Editor} Editor */
/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./panels/gallery.js").Gallery} Gallery */

export { errorsByNode };

export class Runner {
  /** @param {Editor} editor @param {Api} api @param {Gallery} gallery */
  constructor(editor, api, gallery) {
    this.editor = editor;
    this.api = api;
    this.gallery = gallery;
    /** @type {string | null} */
    this.current = null;
    /** @type {Promise<unknown>} the last queue call, which the next one waits for */
    this.queued = Promise.resolve();
    const on = (/** @type {string} */ type, /** @type {(d: any) => void} */ fn) =>
      api.addEventListener(type, (e) => fn(/** @type {CustomEvent} */ (e).detail));
    const st = () => editor.view.status;
    const refresh = () => editor.view.applyStatus();
    on("execution_start", (d) => { this.current = d.prompt_id; st().errors = {}; st().progress = {}; refresh(); });
    on("executing", (d) => {
      st().running = d.node ?? null;
      if (d.node == null) { st().progress = {}; this.clearPreviews(); }
      refresh();
    });
    on("progress", (d) => { st().progress[String(d.node)] = d.max ? d.value / d.max : 0; refresh(); });
    on("preview", (d) => {
      const id = String(d.node_id ?? d.display_node_id ?? st().running ?? "");
      if (!id) return;
      if (st().previews[id]) URL.revokeObjectURL(st().previews[id]);
      st().previews[id] = d.url;
      refresh();
    });
    on("executed", (d) => {
      const texts = outputTexts(d.output);
      if (texts) { st().texts[String(d.node)] = texts; refresh(); }
      const images = (d.output && d.output.images) || [];
      if (!images.length) return;
      st().images[String(d.node)] = images.map((/** @type {any} */ i) => api.viewUrl(i));
      delete st().previews[String(d.node)];
      gallery.add(d.prompt_id, images);
      refresh();
    });
    on("execution_error", (d) => {
      st().errors = { [String(d.node_id)]: { message: `${d.exception_type}: ${d.exception_message}`, inputs: {} } };
      editor.toast(clip(`Error in node #${d.node_id} (${d.node_type}): ${d.exception_message}`), "error");
      this.finish();
    });
    on("execution_interrupted", () => { editor.toast("Job interrupted", "info"); this.finish(); });
    on("execution_success", () => this.finish());
  }

  finish() {
    const st = this.editor.view.status;
    st.running = null;
    st.progress = {};
    this.clearPreviews();
    this.editor.view.applyStatus();
  }

  clearPreviews() {
    const st = this.editor.view.status;
    for (const url of Object.values(st.previews)) URL.revokeObjectURL(url);
    st.previews = {};
  }

  /**
   * Queue the workflow `count` times (batch count), each run with the seeds the previous one's
   * after-queue modes produced; stops at the first refusal. Resolves to the queued prompt ids.
   * @param {number} count @returns {Promise<string[]>}
   */
  async queueMany(count, front = false) {
    const ids = [];
    for (let i = 0; i < count; i++) {
      const id = await this.queue(front, count > 1);
      if (!id) break;
      ids.push(id);
    }
    if (count > 1 && ids.length) this.editor.toast(`Queued ${ids.length} run${ids.length === 1 ? "" : "s"}`, "ok");
    return ids;
  }

  /**
   * Queue the current workflow; on success apply each seed's after-queue mode. Calls run one after
   * another (a click during an auto-queue refill), so each sends the seeds the previous one left.
   * @returns {Promise<string | null>} the prompt id, or null when refused
   */
  queue(front = false, quiet = false) {
    const next = this.queued.then(() => this.queueNow(front, quiet));
    this.queued = next.catch(() => null);
    return next;
  }

  /** @param {boolean} front @param {boolean} quiet */
  async queueNow(front, quiet) {
    const editor = this.editor;
    const st = editor.view.status;
    // Clear old errors before sending: a fast job may report its own error before this reply lands.
    st.errors = {};
    editor.view.applyStatus();
    const r = await this.api.queue(editor.document(), front);
    if (!r.ok) {
      const body = r.body || {};
      st.errors = errorsByNode(body.node_errors || {});
      editor.view.applyStatus();
      editor.toast(summariseRefusal(body, r.status), "error");
      return null;
    }
    Object.assign(st.errors, errorsByNode(r.body.node_errors || {}));
    editor.view.applyStatus();
    this.advanceSeeds();
    if (!quiet) editor.toast(`Queued (${String(r.body.prompt_id).slice(0, 8)})`, "ok");
    return r.body.prompt_id;
  }

  /** Apply "increment"/"decrement"/"randomize" to every unlinked seed widget, as one undoable edit. */
  advanceSeeds() {
    const g = this.editor.graph;
    /** @type {(() => void)[]} */
    const changes = [];
    for (const n of g.nodes.values()) {
      const def = g.defs[n.type];
      if (!def || !n.seedControl || n.seedControl === "fixed") continue;
      for (const inp of def.inputs) {
        if (!isSeedInput(inp) || n.links[inp.name]) continue;
        changes.push(() => { n.values[inp.name] = nextSeed(/** @type {string} */ (n.seedControl), Number(n.values[inp.name]) || 0, inp); });
      }
    }
    if (changes.length) this.editor.commit(() => changes.forEach((f) => f()));
  }
}
