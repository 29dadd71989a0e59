// @ts-check
/**
 * Getting workflows in and out: save as JSON, open a JSON or PNG file (PNG: the `workflow` text
 * chunk, else the `prompt` chunk rebuilt with auto layout), drag-and-drop, and local autosave.
 */
import { readPngText } from "./png.js";
import { toDocument } from "./editor/convert.js";

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

/**
 * Extract a workflow document from a dropped/opened file; throws with a readable message.
 * @param {Blob & {name?: string}} file
 */
export async function documentFromFile(file) {
  const buf = await file.arrayBuffer();
  const head = new Uint8Array(buf.slice(0, 4));
  if (head[0] === 0x89 && head[1] === 0x50) {
    const chunks = await readPngText(buf);
    for (const key of ["workflow", "prompt"]) {
      if (!chunks[key]) continue;
      try {
        const doc = toDocument(JSON.parse(chunks[key]));
        if (doc) return doc;
      } catch { /* a broken chunk: try the next one */ }
    }
    throw new Error("This PNG carries no workflow (no usable 'workflow' or 'prompt' text chunk)");
  }
  let obj;
  try { obj = JSON.parse(new TextDecoder().decode(buf)); } catch { throw new Error(`${file.name || "file"} is neither a PNG nor JSON`); }
  const doc = toDocument(obj) || (obj && obj.workflow && toDocument(obj.workflow));
  if (doc) return doc;
  if (obj && Array.isArray(obj.nodes)) throw new Error("ComfyUI UI-format workflows cannot be opened; use its API-format export or a PNG");
  throw new Error("This JSON is not a workflow document or an API prompt");
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
