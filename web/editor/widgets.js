// @ts-check
/**
 * Native form controls for widget inputs, chosen from the input's type and options in /object_info:
 * multiline text, numbers with min/max/step, choice lists, checkboxes, and the seed's after-queue mode.
 */
import { SEED_CONTROLS } from "./graph.js";

/** @typedef {import("./graph.js").InputDef} InputDef */

/** Largest seed the randomiser picks: big enough to be unique, small enough to stay an exact JS number. */
export const RANDOM_SEED_MAX = 2 ** 50;

/** Clamp and snap a number to an input's min/max (INT rounds). @param {InputDef} d @param {number} v */
export function clampNumber(d, v) {
  if (!Number.isFinite(v)) v = Number(d.opts.default ?? 0);
  if (d.opts.min !== undefined) v = Math.max(Number(d.opts.min), v);
  if (d.opts.max !== undefined && Number(d.opts.max) < Number.MAX_SAFE_INTEGER) v = Math.min(Number(d.opts.max), v);
  return d.kind === "INT" ? Math.round(v) : v;
}

/**
 * Build the control for one widget input; `onChange` receives the parsed value on commit.
 * @param {InputDef} d @param {any} value @param {(v: any) => void} onChange @returns {HTMLElement}
 */
export function createWidget(d, value, onChange) {
  let w;
  if (d.kind === "STRING" && d.opts.multiline) {
    const t = document.createElement("textarea");
    t.value = String(value ?? "");
    t.rows = 3;
    t.addEventListener("change", () => onChange(t.value));
    w = t;
  } else if (d.kind === "STRING") {
    const t = document.createElement("input");
    t.type = "text";
    t.value = String(value ?? "");
    t.addEventListener("change", () => onChange(t.value));
    w = t;
  } else if (d.kind === "INT" || d.kind === "FLOAT") {
    const t = document.createElement("input");
    t.type = "number";
    if (d.opts.min !== undefined) t.min = String(d.opts.min);
    if (d.opts.max !== undefined && d.opts.max < Number.MAX_SAFE_INTEGER) t.max = String(d.opts.max);
    t.step = String(d.opts.step ?? (d.kind === "INT" ? 1 : "any"));
    t.value = String(value ?? "");
    t.addEventListener("change", () => {
      const v = clampNumber(d, Number(t.value));
      t.value = String(v);
      onChange(v);
    });
    w = t;
  } else if (d.kind === "BOOLEAN") {
    const t = document.createElement("input");
    t.type = "checkbox";
    t.checked = !!value;
    t.addEventListener("change", () => onChange(t.checked));
    w = t;
  } else {
    const t = document.createElement("select");
    const choices = [...(d.choices || [])];
    if (value !== undefined && value !== "" && !choices.includes(String(value))) choices.unshift(String(value));
    for (const c of choices) {
      const o = document.createElement("option");
      o.value = o.textContent = c;
      if (!(d.choices || []).includes(c)) o.textContent = `${c} (missing)`;
      t.append(o);
    }
    t.value = String(value ?? "");
    if (!choices.length) t.append(new Option("(no choices)", ""));
    // A value the server does not offer (a model file not on disk) is kept but flagged.
    const flag = () => {
      const missing = t.value !== "" && !(d.choices || []).includes(t.value);
      t.classList.toggle("missing-value", missing);
      t.title = missing ? `“${t.value}” is not available on the server` : t.value;
    };
    flag();
    t.addEventListener("change", () => { flag(); onChange(t.value); });
    w = t;
  }
  w.classList.add("widget");
  w.dataset.widget = d.kind.toLowerCase();
  w.setAttribute("aria-label", d.name);
  return w;
}

/**
 * The seed's after-queue mode picker (fixed / increment / decrement / randomize).
 * @param {string} mode @param {(m: string) => void} onChange
 */
export function createSeedControl(mode, onChange) {
  const s = document.createElement("select");
  s.className = "seed-control";
  s.title = "What happens to the seed after each queue";
  for (const m of SEED_CONTROLS) s.append(new Option(`after queue: ${m}`, m));
  s.value = mode;
  s.addEventListener("change", () => onChange(s.value));
  return s;
}

/**
 * Next seed value for a mode ("fixed" keeps it). `random` is injected so tests stay deterministic.
 * @param {string} mode @param {number} seed @param {InputDef} d @param {() => number} random
 */
export function nextSeed(mode, seed, d, random = Math.random) {
  const max = Math.min(Number(d.opts.max ?? RANDOM_SEED_MAX), RANDOM_SEED_MAX);
  const min = Number(d.opts.min ?? 0);
  if (mode === "increment") return seed + 1 > max ? min : seed + 1;
  if (mode === "decrement") return seed - 1 < min ? max : seed - 1;
  if (mode === "randomize") return Math.floor(random() * max);
  return seed;
}
