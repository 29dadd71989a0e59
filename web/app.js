// @ts-check
/**
 * Wiring: fetch the node catalogue, build the editor, restore the last workflow (or the default
 * one), and connect toolbar, shortcuts, files, queue panel, gallery and the run-time event stream.
 */
import { Api } from "./api.js";
import { parseObjectInfo } from "./editor/graph.js";
import { Editor } from "./editor/editor.js";
import { installInteractions, isEditingField } from "./editor/interact.js";
import { installClipboard } from "./editor/clipboard.js";
import { installModes } from "./editor/modes.js";
import { installGroups } from "./editor/groups.js";
import { installContextMenus } from "./editor/context_menu.js";
import { installReroutes } from "./editor/reroute_ui.js";
import { QueuePanel } from "./panels/queue.js";
import { Gallery } from "./panels/gallery.js";
import { HistoryPanel } from "./panels/history.js";
import { ModelsDialog, namesMissingWeights } from "./panels/models.js";
import { Runner } from "./run.js";
import { documentFromFile, downloadJson, installDrop, loadAutosave } from "./files.js";
import { Tabs } from "./editor/tabs.js";
import { ask } from "./ask.js";
import { addChoice, imageLoader, uploadImage } from "./upload.js";
import { DefsRefresher } from "./refresh.js";
import { installBatch } from "./batch.js";
import { Minimap } from "./editor/minimap.js";
import { Library } from "./editor/library.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const EMPTY = { version: 1, nodes: {}, ui: { notes: [] } };

/** Show a short message at the bottom of the page. @param {string} text @param {string} kind */
function toast(text, kind = "info") {
  // The same message again (queueing twice) replaces the old toast instead of stacking a copy.
  for (const old of $("toasts").children) if (old.textContent === text) old.remove();
  const t = document.createElement("div");
  t.className = `toast ${kind}`;
  t.textContent = text;
  $("toasts").append(t);
  setTimeout(() => t.remove(), kind === "error" || kind === "warn" ? 8000 : 3000);
}

async function defaultDocument() {
  try {
    const r = await fetch("workflows/default.json");
    if (r.ok) return await r.json();
  } catch { /* no default shipped: start empty */ }
  return EMPTY;
}

async function main() {
  const api = new Api();
  let defs, info;
  try {
    info = await api.objectInfo();
    defs = parseObjectInfo(info);
  } catch (e) {
    toast(`Cannot reach the server: ${e}`, "error");
    return;
  }
  const editor = new Editor($("canvas"), defs);
  const interactions = installInteractions(editor);
  const clipboard = installClipboard(editor, document);
  installModes(editor, document);
  installGroups(editor);
  installContextMenus(editor, { rename: interactions.rename, paste: () => clipboard.pasteStored() });
  installReroutes(editor);
  editor.addEventListener("toast", (e) => { const d = /** @type {CustomEvent} */ (e).detail; toast(d.text, d.kind); });

  // Workflow tabs, each autosaved with its own undo stack; a file name becomes its tab's title.
  const fileTitle = (/** @type {string} */ name) => name.replace(/\.(json|png)$/i, "") || "workflow";
  const tabs = new Tabs($("tabs"), editor, {
    newDoc: defaultDocument, ask, frame: true,
    download: (doc, title) => downloadJson(doc, `${title}.json`),
  });
  let saveTimer = 0;
  const scheduleSave = () => {
    clearTimeout(saveTimer);
    saveTimer = window.setTimeout(() => tabs.save(), 250);
  };
  editor.addEventListener("change", scheduleSave);
  editor.addEventListener("viewchange", scheduleSave);
  window.addEventListener("beforeunload", () => tabs.save());

  /**
   * Replace the current tab's workflow as one undo step (Ctrl+Z brings the old one back);
   * `framed` fits the whole graph in the canvas beside the panels (New).
   */
  const loadDoc = (/** @type {any} */ doc, /** @type {string} */ what, framed = false, title = "") => {
    tabs.replace(doc, title, framed || !(doc.ui && doc.ui.view));
    // Nodes of classes the server lacks stay on the canvas (drawn with their file's sockets); say which.
    const missing = editor.graph.missingClasses();
    if (what && missing.length) toast(`Loaded ${what}; missing node classes (kept, marked on the canvas; queueing fails until the server has them): ${missing.join(", ")}`, "warn");
    else if (what) toast(`Loaded ${what}`, "ok");
  };
  const openFile = async (/** @type {Blob & {name?: string}} */ file, /** @type {[number, number]} */ at = editor.pointer) => {
    try {
      loadDoc(await documentFromFile(file, (w) => api.convertWorkflow(w)), file.name || "workflow", false, fileTitle(file.name || ""));
    } catch (e) {
      const loader = imageLoader(defs);
      if (file.type.startsWith("image/") && loader) {
        if (/** @type {any} */ (e).brokenWorkflow) toast(String(/** @type {Error} */ (e).message), "warn");
        return addImage(file, loader, at);
      }
      toast(String(/** @type {Error} */ (e).message || e), "error");
    }
  };
  /** A picture without a workflow: upload it and add a loader node showing it. */
  const addImage = async (/** @type {Blob} */ file, /** @type {{def: any, input: string}} */ loader, /** @type {[number, number]} */ at) => {
    try {
      const name = await uploadImage(file);
      addChoice(loader.def.inputs.find((/** @type {any} */ i) => i.name === loader.input), name);
      editor.commit(() => {
        const n = editor.graph.addNode(loader.def.name, at);
        n.values[loader.input] = name;
        editor.selection = new Set([n.id]);
      });
      toast(`Uploaded ${name}`, "ok");
    } catch (e) {
      toast(String(e), "error");
    }
  };

  const gallery = new Gallery($("gallery-panel"), api, async (url) => openFile(await (await fetch(url)).blob()));
  const queuePanel = new QueuePanel($("queue-panel"), api);
  const historyPanel = new HistoryPanel($("history-panel"), api, (doc) => loadDoc(doc, "the job's workflow"));
  const runner = new Runner(editor, api, gallery);
  api.addEventListener("connected", () => $("conn").classList.add("on"));
  api.addEventListener("disconnected", () => $("conn").classList.remove("on"));
  api.connect();

  // Before the first view is framed: an open library narrows the canvas the graph is fitted into.
  const library = new Library(editor, $("library-panel"));
  const minimap = new Minimap(editor, /** @type {HTMLElement} */ ($("canvas").parentElement));
  $("library-btn").addEventListener("click", () => library.toggle());
  $("minimap-btn").addEventListener("click", () => minimap.toggle());
  document.addEventListener("keydown", (e) => {
    if (e.key === "n" && !e.ctrlKey && !e.metaKey && !e.altKey && !isEditingField()) { e.preventDefault(); library.toggle(); }
  });

  await tabs.restore(loadAutosave()); // first visit: the default workflow, framed whole beside the panels
  gallery.loadHistory();
  historyPanel.refresh();
  queuePanel.refresh();

  const refresher = new DefsRefresher(editor, api, info);
  refresher.installFocus();
  $("refresh-btn").addEventListener("click", () => refresher.refresh()
    .then((changed) => toast(changed ? "Node and model lists updated" : "Node and model lists are up to date", "ok"))
    .catch((e) => toast(`Cannot refresh the lists: ${e}`, "error")));
  const models = new ModelsDialog(api, toast);
  $("models-btn").addEventListener("click", () => models.open());
  const queue = async (front = false, count = batch.count()) => {
    const id = (await runner.queueMany(count, front))[0];
    queuePanel.refresh();
    // A loader naming a weights file that is not there: offer the download right away.
    const errors = Object.values(editor.view.status.errors || {});
    if (!id && errors.some((e) => namesMissingWeights(JSON.stringify(e)))) models.open();
  };
  const batch = installBatch(/** @type {HTMLInputElement} */ ($("batch-count")), /** @type {HTMLInputElement} */ ($("auto-queue")),
    api, (n) => queue(false, n));
  const interrupt = async () => { await api.interrupt(); queuePanel.refresh(); };
  const save = () => { downloadJson(editor.document(), `${tabs.current.title}.json`); tabs.markClean(); };
  const saveApi = () => downloadJson(editor.graph.toApiPrompt(), "workflow_api.json");
  const open = () => /** @type {HTMLInputElement} */ ($("open-file")).click();
  $("queue-btn").addEventListener("click", () => queue());
  $("interrupt-btn").addEventListener("click", interrupt);
  $("save-btn").addEventListener("click", save);
  $("save-api-btn").addEventListener("click", saveApi);
  $("open-btn").addEventListener("click", open);
  $("open-file").addEventListener("change", (e) => {
    const input = /** @type {HTMLInputElement} */ (e.target);
    if (input.files && input.files[0]) openFile(input.files[0]);
    input.value = "";
  });
  $("new-btn").addEventListener("click", async () => loadDoc(await defaultDocument(), "the default workflow", true, "Untitled"));
  $("fit-btn").addEventListener("click", () => { editor.fitView(); scheduleSave(); });
  const panels = () => { document.body.classList.toggle("hide-sidebar", localStorage.getItem("cascade-studio.panels") === "off"); };
  $("panels-btn").addEventListener("click", () => {
    localStorage.setItem("cascade-studio.panels", document.body.classList.contains("hide-sidebar") ? "on" : "off");
    panels();
  });
  panels();
  $("undo-btn").addEventListener("click", () => editor.undo());
  $("redo-btn").addEventListener("click", () => editor.redo());
  $("add-btn").addEventListener("click", () => {
    const r = $("canvas").getBoundingClientRect();
    editor.search(r.left + r.width / 3, r.top + 80);
  });
  $("note-btn").addEventListener("click", () => {
    const r = $("canvas").getBoundingClientRect();
    const pos = editor.view.toGraph(r.left + 60, r.top + 60);
    editor.commit(() => { editor.selection = new Set([editor.graph.addNote(pos).id]); });
  });
  installDrop(document.body, (file, x, y) => openFile(file, editor.view.toGraph(x, y)));

  document.addEventListener("keydown", (e) => {
    const ctrl = e.ctrlKey || e.metaKey;
    if (ctrl && e.key === "Enter") {
      e.preventDefault();
      (/** @type {HTMLElement} */ (document.activeElement))?.blur?.(); // commit a widget being edited first
      if (e.altKey) interrupt();
      else queue(e.shiftKey);
    } else if (ctrl && e.key.toLowerCase() === "s") { e.preventDefault(); save(); }
    else if (ctrl && e.key.toLowerCase() === "o" && !isEditingField()) { e.preventDefault(); open(); }
  });
  // Exposed for tests and the browser console.
  Object.assign(window, { cascade: { editor, api, runner, models, tabs, refresher, library, minimap } });
  document.body.dataset.ready = "1";
}

main();
