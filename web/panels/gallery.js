// @ts-check
/**
 * The gallery: result images of this session's jobs (live, from `executed` events) and of earlier
 * jobs (GET /history), newest first. Clicking one opens it in the lightbox (lightbox.js).
 */

import { Lightbox } from "./lightbox.js";

/** @typedef {import("../api.js").Api} Api */
/** @typedef {import("../api.js").ImageRef} ImageRef */

export class Gallery {
  /** @param {HTMLElement} host @param {Api} api @param {(url: string) => void} onLoadWorkflow */
  constructor(host, api, onLoadWorkflow) {
    this.api = api;
    this.onLoadWorkflow = onLoadWorkflow;
    const head = document.createElement("div");
    head.className = "panel-head";
    const title = document.createElement("h2");
    title.textContent = "Gallery";
    head.append(title);
    this.grid = document.createElement("div");
    this.grid.className = "gallery-grid";
    host.append(head, this.grid);
    /** @type {Set<string>} */
    this.seen = new Set();
  }

  /** Load result images of recent history entries. */
  async loadHistory() {
    const r = await this.api.history(40);
    if (!r.ok || !r.body) return;
    for (const [id, entry] of Object.entries(r.body).reverse()) { // newest first
      for (const out of Object.values(entry.outputs || {})) this.add(id, /** @type {any} */ (out).images || [], false);
    }
  }

  /** Add images of one job (prepend = newest first). @param {string} promptId @param {ImageRef[]} images */
  add(promptId, images, prepend = true) {
    for (const img of images) {
      const url = this.api.viewUrl(img);
      if (this.seen.has(url)) continue;
      this.seen.add(url);
      const fig = document.createElement("figure");
      fig.className = "thumb";
      fig.dataset.promptId = promptId;
      fig.dataset.url = url;
      fig.dataset.filename = img.filename;
      const el = document.createElement("img");
      el.src = url;
      el.alt = img.filename;
      el.loading = "lazy";
      fig.title = `${img.filename} (${img.type || "output"})`;
      fig.append(el);
      fig.addEventListener("click", () => this.open(url));
      if (prepend) this.grid.prepend(fig);
      else this.grid.append(fig);
    }
  }

  /** Show one image large, with the gallery's other images a step away. @param {string} url */
  open(url) {
    const items = [...this.grid.querySelectorAll("figure.thumb")].map((f) => {
      const fig = /** @type {HTMLElement} */ (f);
      return { url: String(fig.dataset.url), filename: String(fig.dataset.filename), promptId: String(fig.dataset.promptId) };
    });
    return new Lightbox(this.api, items, Math.max(0, items.findIndex((i) => i.url === url)), this.onLoadWorkflow);
  }
}
