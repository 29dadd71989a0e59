// @ts-check
/**
 * One small reusable context menu: a list of items, each an action or a submenu, shown at a client
 * point and kept inside the viewport (a submenu that does not fit on the right opens on the left).
 * Escape, a click outside, the window losing focus, choosing an item or opening another menu closes
 * it. Only one menu (with its open submenus) exists at a time.
 */

/**
 * @typedef {{label: string, action?: () => void, items?: MenuItem[] | (() => MenuItem[]), checked?: boolean,
 *   disabled?: boolean, key?: string, swatch?: string}} MenuItem
 * `items` makes a submenu ("▸"); `key` is a shortcut shown on the right; `swatch` a colour chip.
 */

/** @type {(() => void) | null} */
let closeOpen = null;

/** Close the open menu, if any. */
export function closeMenu() {
  if (closeOpen) closeOpen();
}

/**
 * Place `box` at client (x, y), moved so that it stays inside the viewport; `flip` is the width of
 * the parent row a submenu may open to the left of instead.
 * @param {HTMLElement} box @param {number} x @param {number} y
 */
function place(box, x, y, flip = 0) {
  const w = box.offsetWidth, h = box.offsetHeight;
  const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
  const left = x + w <= vw ? x : flip && x - flip - w >= 0 ? x - flip - w : vw - w - 4;
  const top = y + h <= vh ? y : vh - h - 4;
  box.style.left = `${Math.max(4, left)}px`;
  box.style.top = `${Math.max(4, top)}px`;
}

/** Menu box at nesting `level` (0: the menu itself). @param {MenuItem[]} items @param {number} level @param {() => void} close */
function build(items, level, close) {
  const box = document.createElement("div");
  box.className = level ? "context-menu submenu" : "context-menu";
  box.dataset.level = String(level);
  box.setAttribute("role", "menu");
  for (const it of items) {
    const row = document.createElement("div");
    row.className = "menu-item";
    row.setAttribute("role", "menuitem");
    row.dataset.label = it.label;
    row.classList.toggle("disabled", !!it.disabled);
    row.classList.toggle("checked", !!it.checked);
    row.classList.toggle("has-submenu", !!it.items);
    if (it.swatch) {
      const chip = document.createElement("span");
      chip.className = "menu-swatch";
      chip.style.background = it.swatch;
      row.append(chip);
    }
    const label = document.createElement("span");
    label.className = "menu-label";
    label.textContent = it.label;
    row.append(label);
    if (it.key || it.items) {
      const key = document.createElement("span");
      key.className = "menu-key";
      key.textContent = it.items ? "▸" : it.key || "";
      row.append(key);
    }
    const openSub = () => {
      // Hovering a row closes the deeper menus of its siblings, then opens its own.
      for (const e of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(".context-menu")))
        if (Number(e.dataset.level) > level) e.remove();
      if (!it.items || it.disabled) return;
      const sub = build(typeof it.items === "function" ? it.items() : it.items, level + 1, close);
      document.body.append(sub);
      const r = row.getBoundingClientRect();
      place(sub, r.right, r.top - 4, r.width);
    };
    row.addEventListener("pointerenter", openSub);
    row.addEventListener("click", (e) => {
      e.stopPropagation();
      if (it.disabled) return;
      if (it.items) return openSub();
      close();
      it.action?.();
    });
    box.append(row);
  }
  return box;
}

/**
 * Open a menu of `items` at client point (x, y), closing any other. Returns the menu element.
 * @param {MenuItem[]} items @param {number} x @param {number} y
 */
export function openMenu(items, x, y) {
  closeMenu();
  const close = () => {
    for (const e of document.querySelectorAll(".context-menu")) e.remove();
    document.removeEventListener("pointerdown", outside, true);
    document.removeEventListener("keydown", onKey, true);
    window.removeEventListener("blur", close);
    closeOpen = null;
  };
  const outside = (/** @type {PointerEvent} */ e) => {
    if (!(/** @type {HTMLElement} */ (e.target)).closest?.(".context-menu")) close();
  };
  const onKey = (/** @type {KeyboardEvent} */ e) => {
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); }
  };
  const box = build(items, 0, close);
  document.body.append(box);
  place(box, x, y);
  document.addEventListener("pointerdown", outside, true);
  document.addEventListener("keydown", onKey, true);
  window.addEventListener("blur", close);
  closeOpen = close;
  return box;
}
