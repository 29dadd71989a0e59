// @ts-check
/**
 * Image inputs: upload a picture into the server's input folder (POST /upload/image) and use it in
 * an image-picker widget, or drop a plain image on the canvas to get a loader node for it.
 */

/** @typedef {import("./editor/graph.js").InputDef} InputDef */
/** @typedef {import("./editor/graph.js").NodeDef} NodeDef */

/** Whether a combo input picks from uploaded images (`image_upload`, or ComfyUI's `image` convention). */
export function isImageUpload(/** @type {InputDef} */ inp) {
  return inp.kind === "COMBO" && (!!inp.opts.image_upload || inp.name === "image");
}

/** The first node class with an image-upload input, and that input's name, or null. */
export function imageLoader(/** @type {Record<string, NodeDef>} */ defs) {
  for (const def of Object.values(defs)) {
    const inp = def.inputs.find(isImageUpload);
    if (inp) return { def, input: inp.name };
  }
  return null;
}

/**
 * Upload a file to the input folder; returns the name to put in the widget.
 * @param {Blob & {name?: string}} file
 */
export async function uploadImage(file, base = "") {
  const form = new FormData();
  form.append("image", file, file.name || "image.png");
  form.append("type", "input");
  const r = await fetch(`${base}/upload/image`, { method: "POST", body: form });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`Upload failed: ${body?.error?.message || r.status}`);
  return body.subfolder ? `${body.subfolder}/${body.name}` : String(body.name);
}

/** Make `name` one of the input's choices, so every picker of that kind can show it. */
export function addChoice(/** @type {InputDef} */ inp, /** @type {string} */ name) {
  if (inp.choices && !inp.choices.includes(name)) inp.choices.push(name);
}

/** Ask the user for an image file (resolves null when cancelled). @returns {Promise<File | null>} */
export function pickImageFile() {
  return new Promise((resolve) => {
    const input = document.createElement("input");
    input.type = "file";
    input.accept = "image/*";
    input.addEventListener("change", () => resolve(input.files && input.files[0] ? input.files[0] : null));
    input.click();
  });
}

/**
 * The "Upload image…" button of an image picker: uploads the chosen file, adds it to the choices and
 * hands its name to `onUploaded`.
 * @param {InputDef} inp @param {(name: string) => void} onUploaded @param {(message: string) => void} onError
 */
export function createUploadButton(inp, onUploaded, onError) {
  const up = document.createElement("button");
  up.className = "small upload";
  up.textContent = "Upload image…";
  up.addEventListener("click", async () => {
    const file = await pickImageFile();
    if (!file) return;
    try {
      const name = await uploadImage(file);
      addChoice(inp, name);
      onUploaded(name);
    } catch (e) {
      onError(String(e));
    }
  });
  return up;
}
