// @ts-check
/**
 * Reroute points on the canvas (the model is reroutes.js): drawn as dots over the links; double-click
 * on a link adds one there, double-click on a dot removes it (the link stays), dragging a dot moves
 * it, Shift+drag from a dot to an input links that input from the same output through the dot (a
 * fan-out). Each edit is one undo step.
 */
import { addReroute, connectFrom, linkPath, removeReroute, rerouteOf } from "./reroutes.js";
import { typeColor } from "./links.js";

/** @typedef {import("./editor.js").Editor} Editor */

const HIT_PX = 8; // how near (screen pixels) a double-click must be to a link to land on it

/** The points of each link, source first, for Links.draw. @param {import("./reroutes.js").RGraph} g */
export function reroutePoints(g) {
  return (/** @type {string} */ dst, /** @type {string} */ input) =>
    linkPath(g, dst, input).map((id) => /** @type {import("./reroutes.js").Reroute} */ (rerouteOf(g, id)).pos);
}

/** (Re)draw a dot for every point some link passes, in that link's type colour. @param {import("./view.js").View} view */
export function drawReroutes(view) {
  for (const e of view.layer.querySelectorAll(".reroute")) e.remove();
  const g = view.graph;
  /** @type {Map<string, string>} */
  const types = new Map();
  for (const l of g.linkList()) for (const id of linkPath(g, l.dst, l.input)) if (!types.has(id)) types.set(id, l.type);
  for (const [id, type] of types) {
    const r = /** @type {import("./reroutes.js").Reroute} */ (rerouteOf(g, id));
    const e = document.createElement("div");
    e.className = "reroute";
    e.dataset.rerouteId = id;
    e.title = "Reroute: drag to move, Shift+drag to an input to branch, double-click to remove";
    Object.assign(e.style, { left: `${r.pos[0]}px`, top: `${r.pos[1]}px`, background: typeColor(type) });
    view.layer.append(e);
  }
}

/**
 * The link path under client point (x, y), within HIT_PX, or null. Sampled along each path: links are
 * few and a double-click is rare, so no index is kept. @param {import("./view.js").View} view
 */
function linkAt(view, /** @type {number} */ x, /** @type {number} */ y) {
  const [gx, gy] = view.toGraph(x, y);
  const reach = HIT_PX / view.graph.view.scale;
  let best = null, bestD = reach * reach;
  for (const p of /** @type {SVGPathElement[]} */ ([...view.links.group.children])) {
    const len = p.getTotalLength();
    const steps = Math.min(400, Math.max(8, Math.ceil(len / (reach || 1))));
    for (let i = 0; i <= steps; i++) {
      const pt = p.getPointAtLength((len * i) / steps);
      const d = (pt.x - gx) ** 2 + (pt.y - gy) ** 2;
      if (d <= bestD) { bestD = d; best = p; }
    }
  }
  return best;
}

/** Wire the reroute gestures of `editor` (capture phase: they win over pan and search). @param {Editor} editor */
export function installReroutes(editor) {
  const root = editor.root;
  const view = editor.view;

  root.addEventListener("dblclick", (e) => {
    const under = /** @type {HTMLElement | null} */ (document.elementFromPoint(e.clientX, e.clientY));
    const dot = /** @type {HTMLElement | null} */ (under?.closest(".reroute") || null);
    if (dot) {
      e.stopImmediatePropagation();
      editor.commit(() => removeReroute(editor.graph, dot.dataset.rerouteId || ""));
      return;
    }
    if (under?.closest(".node, .note, .search-popup")) return;
    const path = linkAt(view, e.clientX, e.clientY);
    if (!path) return;
    const dst = path.dataset.dst || "", input = path.dataset.input || "";
    const link = editor.graph.nodes.get(dst)?.links[input];
    const out = link && view.outputSocket(link[0], link[1]), inp = view.inputSocket(dst, input);
    if (!out || !inp) return;
    e.stopImmediatePropagation(); // not the node search a double-click on the canvas opens
    editor.commit(() => addReroute(editor.graph, dst, input, view.toGraph(e.clientX, e.clientY), view.socketPos(out), view.socketPos(inp)));
  }, { capture: true });

  root.addEventListener("pointerdown", (e) => {
    const dot = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest(".reroute"));
    if (!dot || e.button !== 0) return;
    e.stopPropagation();
    e.preventDefault();
    const id = dot.dataset.rerouteId || "";
    const r = rerouteOf(editor.graph, id);
    if (!r) return;
    const branch = e.shiftKey;
    let moved = false;
    const move = (/** @type {PointerEvent} */ m) => {
      const p = view.toGraph(m.clientX, m.clientY);
      moved = true;
      if (branch) return view.drawDragLink(r.pos, p);
      r.pos = [p[0], p[1]];
      view.drawLinks();
    };
    const up = (/** @type {PointerEvent} */ u) => {
      window.removeEventListener("pointermove", move, true);
      window.removeEventListener("pointerup", up, true);
      if (!moved) return;
      if (!branch) {
        r.pos = [Math.round(r.pos[0]), Math.round(r.pos[1])];
        return editor.commit(() => {});
      }
      view.drawDragLink(null);
      const s = /** @type {HTMLElement | null} */ (document.elementFromPoint(u.clientX, u.clientY)?.closest(".socket.in") || null);
      if (!s) return;
      const dst = s.dataset.nodeId || "", input = s.dataset.input || "";
      try {
        editor.commit(() => connectFrom(editor.graph, id, dst, input));
      } catch (err) {
        editor.view.render(); // the refused edit changed nothing; redraw what is there
        editor.toast(String(/** @type {Error} */ (err).message || err), "error");
      }
    };
    window.addEventListener("pointermove", move, true);
    window.addEventListener("pointerup", up, true);
  }, { capture: true });
}
