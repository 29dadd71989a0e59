// @ts-check
/**
 * A question in the page (a modal <dialog>), not window.confirm: it can name its choices ("Save",
 * "Discard") and tests drive it like any other DOM.
 */

/**
 * Ask `text` with one button per choice; resolves to the chosen key, or "cancel" when the dialog is
 * dismissed (Escape). @param {string} text @param {{key: string, label: string, kind?: string}[]} choices
 * @returns {Promise<string>}
 */
export function ask(text, choices) {
  const dialog = document.createElement("dialog");
  dialog.className = "ask-dialog";
  const p = document.createElement("p");
  p.textContent = text;
  const row = document.createElement("div");
  row.className = "ask-buttons";
  dialog.append(p, row);
  document.body.append(dialog);
  return new Promise((resolve) => {
    let answer = "cancel";
    for (const c of choices) {
      const b = document.createElement("button");
      b.textContent = c.label;
      b.dataset.choice = c.key;
      if (c.kind) b.className = c.kind;
      b.addEventListener("click", () => { answer = c.key; dialog.close(); });
      row.append(b);
    }
    dialog.addEventListener("close", () => { dialog.remove(); resolve(answer); });
    dialog.showModal();
  });
}
