// @ts-check
/**
 * The server API as the editor uses it: ComfyUI-compatible HTTP routes plus the /ws event stream.
 * Events are re-dispatched as DOM events named after the message type; preview frames (binary,
 * type 4 with JSON metadata, or legacy type 1) arrive as "preview" events carrying a blob URL.
 */

/** @typedef {{filename: string, subfolder?: string, type?: string}} ImageRef */

export class Api extends EventTarget {
  constructor(base = "") {
    super();
    this.base = base;
    this.clientId = sessionStorage.getItem("cascade-studio.client") || crypto.randomUUID().replace(/-/g, "");
    sessionStorage.setItem("cascade-studio.client", this.clientId);
    /** @type {WebSocket | null} */
    this.socket = null;
  }

  /**
   * `{status, ok, body}` of a JSON request. A request that never got an answer (server down, network)
   * is `{status: 0, ok: false}` with the reason in `body.error.message`, so every caller's `!r.ok` path
   * reports it instead of leaving an unhandled rejection and a stuck panel.
   * @param {string} path @param {RequestInit} [init]
   */
  async fetchJson(path, init) {
    let r;
    try {
      r = await fetch(this.base + path, init);
    } catch (e) {
      return { status: 0, ok: false, body: { error: { message: `cannot reach the server (${/** @type {Error} */ (e).message || e})` } } };
    }
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = { error: { message: text } }; }
    return { status: r.status, ok: r.ok, body };
  }

  /** @param {string} path @param {any} body */
  post(path, body) {
    return this.fetchJson(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  async objectInfo() {
    const r = await this.fetchJson("/object_info");
    if (!r.ok) throw new Error(`GET /object_info failed (${r.status})`);
    return r.body;
  }

  /** Queue a workflow document; the reply carries prompt_id or (400) error + node_errors. @param {any} doc */
  queue(doc, front = false) {
    return this.post("/prompt", { prompt: doc, client_id: this.clientId, front });
  }

  /**
   * Convert a ComfyUI editor-format workflow into our document (POST /workflow/convert); classes the
   * server lacks stay in it with their sockets in `ui.comfy`. Throws with the server's message.
   * @param {any} workflow @returns {Promise<any>}
   */
  async convertWorkflow(workflow) {
    const r = await this.post("/workflow/convert", { workflow });
    if (!r.ok || !r.body || !r.body.document) throw new Error((r.body && r.body.error && r.body.error.message) || `POST /workflow/convert failed (${r.status})`);
    return r.body.document;
  }

  queueState() { return this.fetchJson("/queue"); }

  /** Remove pending jobs. @param {string[]} ids */
  cancel(ids) { return this.post("/queue", { delete: ids }); }

  /** Interrupt the running job (only that one when `promptId` is given). @param {string} [promptId] */
  interrupt(promptId) { return this.post("/interrupt", promptId ? { prompt_id: promptId } : {}); }

  history(maxItems = 50) { return this.fetchJson(`/history?max_items=${maxItems}`); }

  /** URL of an output/temp/input image. @param {ImageRef} img */
  viewUrl(img) {
    const q = new URLSearchParams({ filename: img.filename, subfolder: img.subfolder || "", type: img.type || "output" });
    return `${this.base}/view?${q}`;
  }

  /** Open /ws (reconnecting) with the preview-metadata handshake. */
  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}${this.base}/ws?clientId=${encodeURIComponent(this.clientId)}`);
    ws.binaryType = "arraybuffer";
    this.socket = ws;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "feature_flags", data: { supports_preview_metadata: true } }));
      this.emit("connected", {});
    });
    ws.addEventListener("message", (e) => {
      if (typeof e.data === "string") {
        let msg;
        try { msg = JSON.parse(e.data); } catch { return; }
        if (msg && typeof msg.type === "string") this.emit(msg.type, msg.data || {});
      } else {
        const preview = parsePreviewFrame(e.data);
        if (preview) this.emit("preview", { ...preview.meta, url: URL.createObjectURL(preview.blob) });
      }
    });
    ws.addEventListener("close", () => {
      this.emit("disconnected", {});
      setTimeout(() => this.connect(), 1500);
    });
  }

  /** @param {string} type @param {any} detail */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * Decode a binary /ws frame: type 4 = [u32 type][u32 meta length][JSON meta][image];
 * type 1 = [u32 type][u32 format (1 JPEG, 2 PNG)][image]. Returns null for other frames.
 * @param {ArrayBuffer} buf @returns {{meta: Record<string, any>, blob: Blob} | null}
 */
export function parsePreviewFrame(buf) {
  if (buf.byteLength < 8) return null;
  const dv = new DataView(buf);
  const type = dv.getUint32(0);
  if (type === 4) {
    const len = dv.getUint32(4);
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, len)));
    return { meta, blob: new Blob([buf.slice(8 + len)], { type: meta.image_type || "image/jpeg" }) };
  }
  if (type === 1) {
    const mime = dv.getUint32(4) === 2 ? "image/png" : "image/jpeg";
    return { meta: {}, blob: new Blob([buf.slice(8)], { type: mime }) };
  }
  return null;
}
