// @ts-check
/**
 * The history panel: finished jobs, newest first, with their outcome (done, failed, interrupted) and
 * a button that reopens the workflow each one ran. Refreshed whenever a job ends.
 */
import { queueItem } from "./queue.js";
import { toDocument } from "../editor/convert.js";

/** @typedef {import("../api.js").Api} Api */

/** Outcome of a history entry from its last status message. @param {any} entry */
export function outcome(entry) {
  const messages = (entry.status && entry.status.messages) || [];
  const last = messages.length ? messages[messages.length - 1][0] : "";
  if (last === "execution_interrupted") return "interrupted";
  if (last === "execution_success" || (entry.status && entry.status.status_str === "success")) return "done";
  return "failed";
}

/** The workflow a history entry ran: the stored document, else its API prompt rebuilt. @param {any} entry */
export function entryDocument(entry) {
  const item = queueItem(entry.prompt || []);
  const workflow = item.extra && item.extra.extra_pnginfo && item.extra.extra_pnginfo.workflow;
  return (workflow && toDocument(workflow)) || toDocument(item.prompt);
}

export class HistoryPanel {
  /** @param {HTMLElement} host @param {Api} api @param {(doc: any) => void} onLoad */
  constructor(host, api, onLoad) {
    this.api = api;
    this.onLoad = onLoad;
    const head = document.createElement("div");
    head.className = "panel-head";
    const title = document.createElement("h2");
    title.textContent = "History";
    head.append(title);
    this.list = document.createElement("ul");
    this.list.className = "history-list";
    host.append(head, this.list);
    api.addEventListener("executing", (e) => { if (/** @type {CustomEvent} */ (e).detail.node == null) this.refresh(); });
    api.addEventListener("execution_interrupted", () => setTimeout(() => this.refresh(), 300));
  }

  async refresh() {
    const r = await this.api.history(30);
    if (!r.ok || !r.body) return;
    const rows = Object.entries(r.body).reverse().map(([id, entry]) => this.row(id, entry));
    if (!rows.length) rows.push(Object.assign(document.createElement("li"), { className: "empty", textContent: "No finished jobs yet" }));
    this.list.replaceChildren(...rows);
  }

  /** @param {string} id @param {any} entry */
  row(id, entry) {
    const state = outcome(entry);
    const images = Object.values(entry.outputs || {}).reduce((n, o) => n + ((/** @type {any} */ (o).images || []).length), 0);
    const li = document.createElement("li");
    li.className = `job ${state}`;
    li.dataset.promptId = id;
    const label = document.createElement("span");
    label.className = "job-label";
    const icon = { done: "✓", failed: "✗", interrupted: "■" }[state];
    label.textContent = `${icon} ${state} · ${images} image${images === 1 ? "" : "s"} · ${id.slice(0, 8)}`;
    const load = document.createElement("button");
    load.className = "small";
    load.textContent = "Load";
    load.title = "Open the workflow this job ran";
    load.addEventListener("click", () => {
      const doc = entryDocument(entry);
      if (doc) this.onLoad(doc);
    });
    li.append(label, load);
    return li;
  }
}
