// @ts-check
/**
 * The parameters an image was made with, read from the API prompt that made it (the PNG's
 * `prompt` text chunk, or the job's history entry): prompts, seeds, sizes and sampler settings,
 * each as a `[label, value]` row naming the node it came from. Pure.
 */

const PROMPT_INPUTS = new Set(["text", "prompt", "text_g", "text_l", "positive_prompt", "negative_prompt"]);
const SIZE_INPUTS = new Set(["width", "height", "batch_size", "compression"]);
const SAMPLING_INPUTS = new Set(["steps", "cfg", "sampler", "sampler_name", "scheduler", "denoise", "shift"]);

/**
 * Rows for an API prompt `{id: {class_type, inputs, _meta?}}`; linked inputs (arrays) are skipped.
 * @param {Record<string, any>} prompt @returns {{kind: "prompt" | "seed" | "size" | "sampling", label: string, value: string}[]}
 */
export function imageParameters(prompt) {
  /** @type {{kind: "prompt" | "seed" | "size" | "sampling", label: string, value: string}[]} */
  const rows = [];
  const ids = Object.keys(prompt || {}).sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  for (const id of ids) {
    const node = prompt[id] || {};
    const title = (node._meta && node._meta.title) || node.class_type || "node";
    for (const [name, value] of Object.entries(node.inputs || {})) {
      if (Array.isArray(value) || value === null || typeof value === "object") continue;
      /** @type {"prompt" | "seed" | "size" | "sampling" | null} */
      let kind = null;
      if (PROMPT_INPUTS.has(name) && typeof value === "string") kind = "prompt";
      else if (/seed/i.test(name)) kind = "seed";
      else if (SIZE_INPUTS.has(name)) kind = "size";
      else if (SAMPLING_INPUTS.has(name)) kind = "sampling";
      if (kind) rows.push({ kind, label: `${title} #${id} · ${name}`, value: String(value) });
    }
  }
  const order = { prompt: 0, seed: 1, size: 2, sampling: 3 };
  return rows.sort((a, b) => order[a.kind] - order[b.kind]);
}

/**
 * The API prompt inside a PNG's text chunks, or null. @param {Record<string, string>} chunks
 * @returns {Record<string, any> | null}
 */
export function promptFromChunks(chunks) {
  try {
    const p = chunks && chunks.prompt ? JSON.parse(chunks.prompt) : null;
    return p && typeof p === "object" && !Array.isArray(p) ? p : null;
  } catch {
    return null;
  }
}
