// @ts-check
/**
 * The history panel: finished jobs, newest first, each row with a thumbnail, its start time,
 * duration, outcome (and a failure's reason), a button that reopens the workflow it ran, and one
 * that deletes it; "Clear" empties the history (POST /history). Refreshed whenever a job ends.
 */
import { queueItem } from "./queue.js";
import { toDocument } from "../editor/convert.js";
import { entryFacts, firstImage, formatDuration, outcome } from "./history_row.js";

export { outcome };

/** @typedef {import("../api.js").Api} Api */

/** The workflow a history entry ran: the stored document, else its API prompt rebuilt. @param {any} entry */
export function entryDocument(entry) {
  const item = queueItem(entry.prompt || []);
  const workflow = item.extra && item.extra.extra_pnginfo && item.extra.extra_pnginfo.workflow;
  return (workflow && toDocument(workflow)) || toDocument(item.prompt);
}

/** @param {string} tag @param {string} cls @param {string} [text] */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class HistoryPanel {
  /** @param {HTMLElement} host @param {Api} api @param {(doc: any) => void} onLoad */
  constructor(host, api, onLoad) {
    this.api = api;
    this.onLoad = onLoad;
    const head = el("div", "panel-head");
    const clear = el("button", "small history-clear", "Clear");
    clear.title = "Delete every finished job from the history (the image files stay)";
    clear.addEventListener("click", async () => {
      if (!confirm("Delete every entry of the history? The image files stay on disk.")) return;
      await this.api.post("/history", { clear: true });
      this.refresh();
    });
    head.append(el("h2", "", "History"), clear);
    this.list = el("ul", "history-list");
    host.append(head, this.list);
    api.addEventListener("executing", (e) => { if (/** @type {CustomEvent} */ (e).detail.node == null) this.refresh(); });
    api.addEventListener("execution_interrupted", () => setTimeout(() => this.refresh(), 300));
  }

  async refresh() {
    const r = await this.api.history(30);
    if (!r.ok || !r.body) return;
    const rows = Object.entries(r.body).reverse().map(([id, entry]) => this.row(id, entry));
    if (!rows.length) rows.push(el("li", "empty", "No finished jobs yet"));
    this.list.replaceChildren(...rows);
  }

  /** @param {string} id @param {any} entry */
  row(id, entry) {
    const state = outcome(entry);
    const { start, duration, reason } = entryFacts(entry);
    const images = Object.values(entry.outputs || {}).reduce((n, o) => n + ((/** @type {any} */ (o).images || []).length), 0);
    const li = el("li", `job ${state}`);
    li.dataset.promptId = id;
    const thumb = el("span", "job-thumb");
    const image = firstImage(entry);
    if (image) {
      const img = /** @type {HTMLImageElement} */ (el("img", ""));
      img.src = this.api.viewUrl(image);
      img.alt = image.filename;
      img.loading = "lazy";
      thumb.append(img);
    }
    const text = el("span", "job-text");
    const icon = { done: "✓", failed: "✗", interrupted: "■" }[state];
    const when = start !== null ? new Date(start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
    const line = el("span", "job-label", [`${icon} ${state}`, images ? `${images} image${images === 1 ? "" : "s"}` : "", when, duration !== null ? formatDuration(duration) : ""].filter(Boolean).join(" · "));
    line.title = id;
    text.append(line);
    if (reason) {
      const why = el("span", "job-reason", reason);
      why.title = reason;
      text.append(why);
    }
    const load = el("button", "small job-load", "Load");
    load.title = "Open the workflow this job ran";
    load.addEventListener("click", () => {
      const doc = entryDocument(entry);
      if (doc) this.onLoad(doc);
    });
    const del = el("button", "small danger job-delete", "×");
    del.title = "Delete this entry from the history";
    del.setAttribute("aria-label", "Delete from history");
    del.addEventListener("click", async () => {
      del.disabled = true;
      await this.api.post("/history", { delete: [id] });
      this.refresh();
    });
    li.append(thumb, text, load, del);
    return li;
  }
}
