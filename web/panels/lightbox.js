// @ts-check
/**
 * The gallery's large view: one image of a list, with previous/next (buttons, ← →), Escape or a
 * click outside to close, a download link, "Load its workflow", and the parameters the image was
 * made with (from its PNG's `prompt` chunk, else from its job's history entry).
 */
import { readPngText } from "../png.js";
import { imageParameters, promptFromChunks } from "./image_params.js";
import { queueItem } from "./queue.js";

/** @typedef {{url: string, filename: string, promptId: string}} LightboxItem */
/** @typedef {import("../api.js").Api} Api */

/** @param {string} tag @param {string} cls @param {string} [text] */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The API prompt that made an image: its PNG chunk, else its job's history entry. @param {Api} api @param {LightboxItem} item */
export async function promptOf(api, item) {
  try {
    const r = await fetch(item.url);
    const p = promptFromChunks(await readPngText(await r.arrayBuffer()));
    if (p) return p;
  } catch { /* not a PNG with chunks: ask the history */ }
  const h = await api.fetchJson(`/history/${encodeURIComponent(item.promptId)}`);
  const entry = h.ok && h.body && h.body[item.promptId];
  return entry ? queueItem(entry.prompt || []).prompt : null;
}

export class Lightbox {
  /**
   * @param {Api} api @param {LightboxItem[]} items @param {number} index
   * @param {(url: string) => void} onLoadWorkflow
   */
  constructor(api, items, index, onLoadWorkflow) {
    this.api = api;
    this.items = items;
    this.index = index;
    this.box = el("div", "lightbox");
    this.box.tabIndex = -1;
    this.img = /** @type {HTMLImageElement} */ (el("img", "lightbox-image"));
    this.name = el("span", "lightbox-name");
    this.params = el("dl", "lightbox-params");
    const prev = el("button", "lightbox-prev", "‹ Previous");
    const next = el("button", "lightbox-next", "Next ›");
    this.download = /** @type {HTMLAnchorElement} */ (el("a", "lightbox-download button", "Download"));
    const load = el("button", "lightbox-load", "Load its workflow");
    const close = el("button", "lightbox-close", "Close");
    prev.addEventListener("click", () => this.step(-1));
    next.addEventListener("click", () => this.step(1));
    load.addEventListener("click", () => { const url = this.items[this.index].url; this.close(); onLoadWorkflow(url); });
    close.addEventListener("click", () => this.close());
    const bar = el("div", "lightbox-bar");
    bar.append(prev, this.name, next, this.download, load, close);
    const body = el("div", "lightbox-body");
    body.append(this.img, this.params);
    this.box.append(body, bar);
    this.box.addEventListener("click", (e) => { if (e.target === this.box || e.target === body) this.close(); });
    this.onKey = (/** @type {KeyboardEvent} */ e) => {
      if (e.key === "Escape") this.close();
      else if (e.key === "ArrowLeft") this.step(-1);
      else if (e.key === "ArrowRight") this.step(1);
      else return;
      e.preventDefault();
      e.stopPropagation(); // the canvas's own shortcuts must not fire under the lightbox
    };
    document.addEventListener("keydown", this.onKey, true);
    document.body.append(this.box);
    this.box.focus();
    this.show();
  }

  /** Move by `delta` images, wrapping around. @param {number} delta */
  step(delta) {
    const n = this.items.length;
    this.index = (((this.index + delta) % n) + n) % n;
    this.show();
  }

  async show() {
    const item = this.items[this.index];
    this.img.src = item.url;
    this.name.textContent = `${item.filename} (${this.index + 1} of ${this.items.length})`;
    this.download.href = item.url;
    this.download.download = item.filename;
    this.params.replaceChildren();
    this.params.dataset.loaded = "";
    const prompt = await promptOf(this.api, item);
    if (this.items[this.index] !== item) return; // moved on while reading
    const size = this.img.naturalWidth ? [{ label: "image", value: `${this.img.naturalWidth}×${this.img.naturalHeight}` }] : [];
    const rows = prompt ? imageParameters(prompt) : [];
    for (const r of [...rows, ...size]) this.params.append(el("dt", "", r.label), el("dd", "", r.value));
    if (!prompt) this.params.append(el("dd", "muted", "No parameters: the image carries no workflow and its job is not in the history."));
    this.params.dataset.loaded = "1";
  }

  close() {
    document.removeEventListener("keydown", this.onKey, true);
    this.box.remove();
  }
}
