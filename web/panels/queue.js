// @ts-check
/**
 * The queue panel: the running job (with interrupt) and pending jobs (each cancellable), refreshed
 * from GET /queue whenever the server broadcasts a `status` event. A running job names the worker
 * that runs it (GET /system_stats `workers`: "local", or a Ray worker's name with --workers).
 */

/** @typedef {import("../api.js").Api} Api */

/** Normalise a queue item: ComfyUI's 5-tuple [number, prompt_id, prompt, extra_data, outputs] or an object. */
export function queueItem(/** @type {any} */ item) {
  if (Array.isArray(item)) return { number: item[0], id: String(item[1]), prompt: item[2] || {}, extra: item[3] || {} };
  return { number: item.number, id: String(item.prompt_id), prompt: item.prompt || {}, extra: item.extra_data || {} };
}

export class QueuePanel {
  /** @param {HTMLElement} host @param {Api} api */
  constructor(host, api) {
    this.host = host;
    this.api = api;
    this.list = document.createElement("ul");
    this.list.className = "queue-list";
    const head = document.createElement("div");
    head.className = "panel-head";
    const title = document.createElement("h2");
    title.textContent = "Queue";
    this.count = document.createElement("span");
    this.count.className = "queue-count";
    const clear = document.createElement("button");
    clear.textContent = "Clear";
    clear.title = "Remove every pending job";
    clear.className = "small";
    clear.addEventListener("click", () => this.api.post("/queue", { clear: true }).then(() => this.refresh()));
    head.append(title, this.count, clear);
    host.append(head, this.list);
    /** Progress of the running job, shown in its row. */
    this.progress = "";
    api.addEventListener("progress", (e) => {
      const d = /** @type {CustomEvent} */ (e).detail;
      this.progress = `node #${d.node} ${d.value}/${d.max}`;
      const label = this.list.querySelector("li.running .job-progress");
      if (label) label.textContent = this.progress;
    });
    api.addEventListener("execution_start", () => { this.progress = ""; });
    api.addEventListener("status", () => this.refresh());
    api.addEventListener("connected", () => this.refresh());
  }

  async refresh() {
    const r = await this.api.queueState();
    if (!r.ok || !r.body) return;
    const running = (r.body.queue_running || []).map(queueItem);
    /** @type {Record<string, string>} prompt id -> worker name, only asked for while jobs run */
    const workers = {};
    if (running.length) {
      const s = await this.api.fetchJson("/system_stats");
      for (const w of (s.ok && s.body && s.body.workers) || []) if (w.prompt_id) workers[w.prompt_id] = w.name;
    }
    const pending = (r.body.queue_pending || []).map(queueItem).sort((/** @type {any} */ a, /** @type {any} */ b) => a.number - b.number);
    this.count.textContent = `${running.length} running · ${pending.length} pending`;
    const rows = [];
    for (const it of running) rows.push(this.row(it, true, workers[it.id]));
    for (const it of pending) rows.push(this.row(it, false));
    if (!rows.length) rows.push(Object.assign(document.createElement("li"), { className: "empty", textContent: "Nothing queued" }));
    this.list.replaceChildren(...rows);
  }

  /** @param {{id: string, number: number, prompt: any}} it @param {boolean} running @param {string} [worker] */
  row(it, running, worker) {
    const li = document.createElement("li");
    li.className = running ? "job running" : "job pending";
    li.dataset.promptId = it.id;
    const label = document.createElement("span");
    label.className = "job-label";
    label.textContent = `${running ? "▶" : "waiting ·"} ${Object.keys(it.prompt).length} nodes · ${it.id.slice(0, 8)}`;
    const btn = document.createElement("button");
    btn.className = "small danger";
    btn.textContent = running ? "Interrupt" : "Cancel";
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      if (running) await this.api.interrupt(it.id);
      else await this.api.cancel([it.id]);
      this.refresh();
    });
    li.append(label);
    if (worker) li.append(Object.assign(document.createElement("span"), { className: "job-worker", textContent: `on ${worker}` }));
    if (running) li.append(Object.assign(document.createElement("span"), { className: "job-progress", textContent: this.progress }));
    li.append(btn);
    return li;
  }
}
