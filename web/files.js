// @ts-check
/**
 * Getting workflows in and out: save as JSON, open a JSON or PNG file (PNG: the `workflow` text
 * chunk, else the `prompt` chunk rebuilt with auto layout; ComfyUI editor JSON converted by the
 * server), drag-and-drop, and local autosave.
 */
import { readPngText } from "./png.js";
import { isEditorWorkflow, toDocument } from "./editor/convert.js";

const AUTOSAVE_KEY = "cascade-studio.workflow";

/** Offer `doc` as a download named `name`. @param {any} doc */
export function downloadJson(doc, name = "workflow.json") {
  const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** @typedef {(workflow: any) => Promise<any>} ConvertComfy POST /workflow/convert: editor JSON -> our document */

/**
 * A document from one parsed JSON value: our document or an API prompt directly, a ComfyUI
 * editor-format workflow through `convertComfy` (the server owns that conversion); null when the
 * value is none of these. Rejects when the server refuses the ComfyUI file.
 * @param {any} obj @param {ConvertComfy} convertComfy @returns {Promise<any>}
 */
export async function loadableDocument(obj, convertComfy) {
  const doc = toDocument(obj);
  if (doc) return doc;
  if (isEditorWorkflow(obj)) return convertComfy(obj);
  if (obj && typeof obj === "object" && obj.workflow && typeof obj.workflow === "object") return loadableDocument(obj.workflow, convertComfy);
  return null;
}

/**
 * Extract a workflow document from a dropped/opened file; throws with a readable message. A PNG's
 * `workflow` chunk wins over its `prompt` chunk (it keeps positions, titles, groups and notes);
 * the prompt chunk is the fallback when the workflow chunk is absent, broken or refused.
 * @param {Blob & {name?: string}} file @param {ConvertComfy} convertComfy
 */
export async function documentFromFile(file, convertComfy) {
  const buf = await file.arrayBuffer();
  const head = new Uint8Array(buf.slice(0, 4));
  if (head[0] === 0x89 && head[1] === 0x50) {
    const chunks = await readPngText(buf);
    const problems = [];
    for (const key of ["workflow", "prompt"]) {
      if (!chunks[key]) continue;
      try {
        const doc = await loadableDocument(JSON.parse(chunks[key]), convertComfy);
        if (doc) return doc;
        problems.push(`its '${key}' chunk is not a workflow`);
      } catch (e) { problems.push(`its '${key}' chunk: ${/** @type {Error} */ (e).message || e}`); }
    }
    if (!problems.length) throw new Error("This PNG carries no workflow (no 'workflow' or 'prompt' text chunk)");
    // Marked so the caller can say why a picture that claimed a workflow opened as a plain image.
    throw Object.assign(new Error(`This PNG carries no usable workflow (${problems.join("; ")})`), { brokenWorkflow: true });
  }
  let obj;
  try { obj = JSON.parse(new TextDecoder().decode(buf)); } catch { throw new Error(`${file.name || "file"} is neither a PNG nor JSON`); }
  const doc = await loadableDocument(obj, convertComfy);
  if (doc) return doc;
  throw new Error("This JSON is not a workflow document, an API prompt or a ComfyUI workflow");
}

/** The autosaved document, or null. */
export function loadAutosave() {
  try {
    const text = localStorage.getItem(AUTOSAVE_KEY);
    return text ? toDocument(JSON.parse(text)) : null;
  } catch {
    return null;
  }
}

/** Save `doc` for the next visit. @param {any} doc */
export function autosave(doc) {
  try { localStorage.setItem(AUTOSAVE_KEY, JSON.stringify(doc)); } catch { /* quota: nothing to do */ }
}

/**
 * Accept files dropped anywhere on the page. @param {HTMLElement} target
 * @param {(file: File, x: number, y: number) => void} onFile
 */
export function installDrop(target, onFile) {
  target.addEventListener("dragover", (e) => {
    if (!e.dataTransfer || ![...e.dataTransfer.types].includes("Files")) return;
    e.preventDefault();
    target.classList.add("drop-hover");
  });
  target.addEventListener("dragleave", (e) => { if (e.target === target) target.classList.remove("drop-hover"); });
  target.addEventListener("drop", (e) => {
    target.classList.remove("drop-hover");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (!file) return;
    e.preventDefault();
    onFile(file, e.clientX, e.clientY);
  });
}
