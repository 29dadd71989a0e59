// @ts-check
/**
 * The node search popup: fuzzy match on display name, class name and category; optionally limited
 * to the classes that can take (or give) a dragged link's type.
 */

/** @typedef {import("./graph.js").NodeDef} NodeDef */
/** @typedef {{def: NodeDef, slot?: string | number}} Candidate */

/**
 * Fuzzy score of `query` against `text`: higher is better, -1 when the letters are not all found in
 * order. Consecutive letters and word starts score more, so "scs" finds "Stage C Sampler".
 * @param {string} query @param {string} text
 */
export function fuzzyScore(query, text) {
  const q = query.toLowerCase().replace(/\s+/g, "");
  const t = text.toLowerCase();
  if (!q) return 0;
  const direct = t.indexOf(query.toLowerCase().trim());
  if (direct >= 0) return 1000 - direct - t.length / 100;
  let score = 0;
  let ti = 0;
  let prev = -2;
  for (const c of q) {
    const found = t.indexOf(c, ti);
    if (found < 0) return -1;
    score += found === prev + 1 ? 5 : 1;
    if (found === 0 || /[\s_/\-.]/.test(t[found - 1]) || (text[found] !== t[found] && text[found - 1] === t[found - 1])) score += 3;
    prev = found;
    ti = found + 1;
  }
  return score - t.length / 100;
}

/** Rank candidates for a query across display name, class name and category. @param {Candidate[]} cands @param {string} query */
export function rank(cands, query) {
  const scored = cands.map((c) => {
    const d = c.def;
    // Display-name hits rank above class-name hits, which rank above category hits.
    const hit = (/** @type {number} */ v, /** @type {number} */ bonus) => (v < 0 ? -1 : v + bonus);
    const s = Math.max(hit(fuzzyScore(query, d.displayName), 2), hit(fuzzyScore(query, d.name), 1), hit(fuzzyScore(query, `${d.category} ${d.displayName}`), 0));
    return { c, s };
  });
  return scored.filter((x) => x.s >= 0).sort((a, b) => b.s - a.s || a.c.def.displayName.localeCompare(b.c.def.displayName)).map((x) => x.c);
}

/**
 * Open the search popup at client position (x, y) inside `host`; resolves with the pick or null.
 * @param {HTMLElement} host @param {number} x @param {number} y @param {Candidate[]} cands @param {string} [hint]
 * @returns {Promise<Candidate | null>}
 */
export function openSearch(host, x, y, cands, hint = "") {
  for (const old of host.querySelectorAll(".search-popup")) old.remove();
  const box = document.createElement("div");
  box.className = "search-popup";
  const r = host.getBoundingClientRect();
  box.style.left = `${Math.min(x - r.left, r.width - 340)}px`;
  box.style.top = `${Math.min(y - r.top, r.height - 360)}px`;
  const input = document.createElement("input");
  input.type = "search";
  input.placeholder = hint ? `Nodes taking ${hint}…` : "Search nodes…";
  input.setAttribute("aria-label", "Search nodes");
  const list = document.createElement("ul");
  list.setAttribute("role", "listbox");
  box.append(input, list);
  host.append(box);
  let items = /** @type {Candidate[]} */ ([]);
  let active = 0;
  return new Promise((resolve) => {
    const done = (/** @type {Candidate | null} */ v) => {
      box.remove();
      document.removeEventListener("pointerdown", outside, true);
      resolve(v);
    };
    const outside = (/** @type {Event} */ e) => { if (!box.contains(/** @type {Node} */ (e.target))) done(null); };
    const draw = () => {
      items = rank(cands, input.value).slice(0, 60);
      active = Math.min(active, Math.max(0, items.length - 1));
      list.replaceChildren(...items.map((c, i) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.dataset.type = c.def.name;
        li.classList.toggle("active", i === active);
        const name = document.createElement("span");
        name.className = "search-name";
        name.textContent = c.def.displayName;
        const cat = document.createElement("span");
        cat.className = "search-category";
        cat.textContent = c.def.category;
        li.title = c.def.description;
        li.append(name, cat);
        li.addEventListener("pointerdown", (e) => { e.preventDefault(); done(c); });
        return li;
      }));
      if (!items.length) list.append(Object.assign(document.createElement("li"), { className: "empty", textContent: "No matching nodes" }));
    };
    input.addEventListener("input", () => { active = 0; draw(); });
    input.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Escape") done(null);
      else if (e.key === "Enter") done(items[active] || null);
      else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : -1) + items.length) % Math.max(1, items.length);
        draw();
        list.children[active]?.scrollIntoView({ block: "nearest" });
      }
    });
    setTimeout(() => document.addEventListener("pointerdown", outside, true), 0);
    draw();
    input.focus();
  });
}
