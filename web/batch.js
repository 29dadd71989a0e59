// @ts-check
/**
 * Batch count and auto-queue beside the Queue button: "× N" queues the workflow N times at once
 * (seeds advancing by their after-queue mode between runs); "auto" queues it again whenever the
 * server's queue runs empty, until unticked. Both settings persist in localStorage.
 */

/** Largest batch count: enough for an evening's variations, small enough not to flood the queue by a typo. */
export const MAX_BATCH = 100;
const KEY = "cascade-studio.batch";

/** Clamp a typed batch count to 1..MAX_BATCH. @param {any} v */
export function batchCount(v) {
  const n = Math.round(Number(v));
  return Number.isFinite(n) ? Math.min(MAX_BATCH, Math.max(1, n)) : 1;
}

/**
 * Wire the batch count field and the auto-queue box.
 * @param {HTMLInputElement} countInput @param {HTMLInputElement} autoBox
 * @param {import("./api.js").Api} api @param {(count: number) => Promise<unknown>} queue queues `count` runs
 * @returns {{count: () => number}}
 */
export function installBatch(countInput, autoBox, api, queue) {
  const saved = (() => { try { return JSON.parse(localStorage.getItem(KEY) || "{}"); } catch { return {}; } })();
  countInput.value = String(batchCount(saved.count ?? 1));
  autoBox.checked = false; // auto-queue never resumes by itself after a reload
  const save = () => localStorage.setItem(KEY, JSON.stringify({ count: batchCount(countInput.value) }));
  countInput.addEventListener("change", () => { countInput.value = String(batchCount(countInput.value)); save(); });
  let busy = false;
  let missed = false;
  /** Whether the server's queue is empty right now. */
  const emptyNow = async () => {
    const r = await api.queueState();
    return r.ok && r.body && !(r.body.queue_running || []).length && !(r.body.queue_pending || []).length;
  };
  api.addEventListener("status", async (e) => {
    const d = /** @type {CustomEvent} */ (e).detail;
    const remaining = d && d.status && d.status.exec_info && d.status.exec_info.queue_remaining;
    if (!autoBox.checked || remaining !== 0) return;
    // A run can finish (its "empty" event arriving) while the refill is still being sent: remember
    // it and look again afterwards, so the loop never stalls on a missed event.
    if (busy) { missed = true; return; }
    busy = true;
    try {
      do {
        missed = false;
        await queue(batchCount(countInput.value));
      } while (missed && autoBox.checked && (await emptyNow()));
    } finally { busy = false; }
  });
  return { count: () => batchCount(countInput.value) };
}
