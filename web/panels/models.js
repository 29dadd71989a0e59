// @ts-check
/**
 * The "missing models" dialog: the official weights files the server lacks, each with a Download
 * button and a progress bar fed by GET /tasks/{id}; "Download the lite set" starts them all. Opened
 * by the toolbar's Models button and when queueing names a missing weights file.
 */

/** How often a running download is polled (ms). */
const POLL_MS = 300;

/** @param {number | null} n */
function bytes(n) {
  if (n == null) return "?";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** @param {string} tag @param {Record<string, string>} attrs @param {(Node | string)[]} kids */
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
}

export class ModelsDialog {
  /**
   * @param {import("../api.js").Api} api
   * @param {(text: string, kind?: string) => void} toast
   */
  constructor(api, toast) {
    this.api = api;
    this.toast = toast;
    this.dialog = /** @type {HTMLDialogElement} */ (el("dialog", { id: "models-dialog", class: "models-dialog" }));
    this.list = el("div", { class: "models-list" });
    this.lite = /** @type {HTMLButtonElement} */ (el("button", { class: "primary", "data-action": "lite" }, "Download the lite set"));
    const close = el("button", { "data-action": "close" }, "Close");
    close.addEventListener("click", () => this.dialog.close());
    this.lite.addEventListener("click", () => this.start({ set: "lite" }));
    this.dialog.append(
      el("h2", {}, "Missing models"),
      el("p", { class: "muted" }, "Official Stable Cascade files from the Hugging Face hub, checked and put in the weights folder."),
      this.list, el("div", { class: "models-actions" }, this.lite, close));
    document.body.append(this.dialog);
    /** @type {Map<string, HTMLElement>} row per file name */
    this.rows = new Map();
    /** @type {Set<string>} task ids being polled */
    this.polling = new Set();
  }

  /** Show the dialog with the current list of missing files. */
  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    const r = await this.api.fetchJson("/downloads/missing");
    if (!r.ok) { this.toast(`Cannot list missing models: ${r.body?.error?.message || r.status}`, "error"); return; }
    this.list.replaceChildren();
    this.rows.clear();
    for (const m of r.body.missing) this.list.append(this.row(m));
    if (!r.body.missing.length) this.list.append(el("p", { class: "models-none" }, "Every official file is in place."));
    this.lite.disabled = !r.body.sets.lite.some((/** @type {string} */ n) => this.rows.has(n));
    for (const m of r.body.missing) if (m.task) this.follow(m.task);
  }

  /** @param {{name: string, folder: string, size: string, note: string}} m */
  row(m) {
    const button = el("button", { "data-action": "download" }, "Download");
    button.addEventListener("click", () => this.start({ files: [m.name] }));
    const row = el("div", { class: "models-row", "data-file": m.name },
      el("span", { class: "models-name" }, `${m.folder}/${m.name}`),
      el("span", { class: "muted" }, `${m.size}${m.note ? ` · ${m.note}` : ""}`),
      button, el("progress", { max: "1", value: "0" }), el("span", { class: "models-state" }, ""));
    this.rows.set(m.name, row);
    return row;
  }

  /** @param {{files?: string[], set?: string}} what */
  async start(what) {
    const r = await this.api.post("/models/download", what);
    if (!r.ok) { this.toast(`Cannot download: ${r.body?.error?.message || r.status}`, "error"); return; }
    for (const t of r.body.tasks) this.follow(t.id);
  }

  /** Poll one task until it ends, updating its row. @param {string} id */
  async follow(id) {
    if (this.polling.has(id)) return;
    this.polling.add(id);
    try {
      for (;;) {
        const r = await this.api.fetchJson(`/tasks/${encodeURIComponent(id)}`);
        if (!r.ok) { this.toast(`Download ${id}: ${r.body?.error?.message || r.status}`, "error"); return; }
        this.show(r.body);
        if (["done", "error", "cancelled"].includes(r.body.state)) return;
        await new Promise((res) => setTimeout(res, POLL_MS));
      }
    } finally {
      this.polling.delete(id);
    }
  }

  /** @param {{name: string, state: string, bytes_done: number, bytes_total: number | null, speed: number, error: string | null}} t */
  show(t) {
    const row = this.rows.get(t.name);
    if (!row) return;
    row.dataset.state = t.state;
    const bar = /** @type {HTMLProgressElement} */ (row.querySelector("progress"));
    bar.max = t.bytes_total || 1;
    bar.value = t.state === "done" ? bar.max : t.bytes_done;
    /** @type {HTMLButtonElement} */ (row.querySelector("button")).disabled = !["error", "cancelled"].includes(t.state);
    const state = /** @type {HTMLElement} */ (row.querySelector(".models-state"));
    if (t.state === "running") state.textContent = `${bytes(t.bytes_done)} / ${bytes(t.bytes_total)} · ${bytes(t.speed)}/s`;
    else if (t.state === "error") state.textContent = t.error || "failed";
    else state.textContent = t.state === "done" ? "done" : t.state;
    if (t.state === "done") this.toast(`Downloaded ${t.name}`, "ok");
    if (t.state === "error") this.toast(`Download of ${t.name} failed: ${t.error}`, "error");
  }
}

/** True when a validation message names a weights file that is not there (runtime/weights.py's wording). @param {string} text */
export function namesMissingWeights(text) {
  return /weights file '[^']+' not found/.test(text);
}
