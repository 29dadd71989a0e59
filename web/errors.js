// @ts-check
/**
 * Turning a refused prompt's node errors into what the page shows: per-node messages (on the
 * nodes, each reason once) and one short summary toast for the whole prompt, so a workflow with
 * five failing loaders gives one line over the canvas, not five long messages repeated.
 */

/** Longest summary, in characters: one toast line, the rest is on the nodes. */
export const SUMMARY_MAX = 220;

/** @param {any} r one reason `{message, details, extra_info}` */
function reasonText(r) {
  return r.details ? `${r.message}: ${r.details}` : String(r.message || "error");
}

/**
 * Per-node messages keyed by input name; the same reason reported twice on a node is shown once.
 * @param {Record<string, any>} nodeErrors the 400 reply's `node_errors`
 * @returns {Record<string, {message: string, inputs: Record<string, string>}>}
 */
export function errorsByNode(nodeErrors) {
  /** @type {Record<string, {message: string, inputs: Record<string, string>}>} */
  const out = {};
  for (const [id, ne] of Object.entries(nodeErrors || {})) {
    /** @type {Record<string, string>} */
    const inputs = {};
    const lines = new Set();
    for (const r of (ne && ne.errors) || []) {
      const text = reasonText(r);
      lines.add(text);
      const name = r.extra_info && r.extra_info.input_name;
      if (name) inputs[name] = text;
    }
    out[id] = { message: [...lines].join("\n"), inputs };
  }
  return out;
}

/**
 * One line for a refused prompt: how many nodes failed, grouped by reason (without the long
 * details), naming node ids, e.g. "Cannot queue: 5 nodes have errors (marked red) — Value not in
 * list: #1 #2 #3; Required input is missing: #6". Falls back to the top-level error message.
 * @param {any} body the 400 reply body `{error, node_errors}` @param {number} status HTTP status
 * @returns {string}
 */
export function summariseRefusal(body, status) {
  const nodeErrors = (body && body.node_errors) || {};
  const ids = Object.keys(nodeErrors);
  const err = (body && body.error) || {};
  if (!ids.length) {
    const text = `Cannot queue: ${err.message || `HTTP ${status}`}${err.details ? ` — ${err.details}` : ""}`;
    return clip(text);
  }
  /** @type {Map<string, string[]>} reason message -> node ids */
  const groups = new Map();
  for (const id of ids) {
    for (const r of nodeErrors[id].errors || []) {
      const key = String(r.message || "error");
      const list = groups.get(key) || [];
      if (!list.includes(id)) list.push(id);
      groups.set(key, list);
    }
  }
  const parts = [...groups].map(([msg, nodes]) => `${msg}: ${nodes.map((n) => `#${n}`).join(" ")}`);
  const head = `Cannot queue: ${ids.length} node${ids.length === 1 ? " has" : "s have"} errors (marked red)`;
  return clip(`${head} — ${parts.join("; ")}`);
}

/** @param {string} text */
export function clip(text, max = SUMMARY_MAX) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
