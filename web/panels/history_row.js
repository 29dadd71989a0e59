// @ts-check
/**
 * Facts one history row shows, read from a ComfyUI history entry: outcome, start time, duration,
 * the failure's reason and the first image. Pure (no DOM).
 */

/** @typedef {import("../api.js").ImageRef} ImageRef */

/** Outcome of a history entry from its last status message. @param {any} entry */
export function outcome(entry) {
  const messages = (entry.status && entry.status.messages) || [];
  const last = messages.length ? messages[messages.length - 1][0] : "";
  if (last === "execution_interrupted") return "interrupted";
  if (last === "execution_success" || (entry.status && entry.status.status_str === "success")) return "done";
  return "failed";
}

/**
 * Start time (ms since the epoch), duration (ms) and, for a failed or interrupted job, why.
 * Missing pieces are null (a job cancelled before it ran has no start).
 * @param {any} entry @returns {{start: number | null, duration: number | null, reason: string | null}}
 */
export function entryFacts(entry) {
  const messages = /** @type {[string, any][]} */ ((entry.status && entry.status.messages) || []);
  const stamp = (/** @type {string} */ type) => {
    const m = messages.find(([t, d]) => t === type && d && typeof d.timestamp === "number");
    return m ? m[1].timestamp : null;
  };
  const start = stamp("execution_start");
  const ends = messages.filter(([, d]) => d && typeof d.timestamp === "number").map(([, d]) => d.timestamp);
  const end = ends.length ? Math.max(...ends) : null;
  const err = messages.find(([t]) => t === "execution_error");
  const stop = messages.find(([t]) => t === "execution_interrupted");
  let reason = null;
  if (err) {
    const d = err[1] || {};
    reason = `${d.node_type ? `${d.node_type} #${d.node_id}: ` : ""}${d.exception_message || d.exception_type || "error"}`;
  } else if (stop) {
    reason = (stop[1] && stop[1].reason) || "interrupted";
  }
  return { start, duration: start !== null && end !== null ? end - start : null, reason };
}

/** The first output image of an entry, or null. @param {any} entry @returns {ImageRef | null} */
export function firstImage(entry) {
  for (const out of Object.values(entry.outputs || {})) {
    const images = /** @type {any} */ (out).images || [];
    if (images.length) return images[0];
  }
  return null;
}

/** "850 ms", "2.4 s", "3 min 05 s". @param {number} ms */
export function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}
