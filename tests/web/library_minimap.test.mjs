// Unit tests of the pure parts of the node library (category tree) and the minimap (mapping maths).
import test from "node:test";
import assert from "node:assert/strict";
import { categoryTree } from "../../web/editor/library.js";
import { unionBox, fitFrame, visibleBox, centredOffset } from "../../web/editor/minimap.js";

const def = (name, category) => ({ name, displayName: name.toUpperCase(), category, description: "", inputs: [], outputs: [], outputNode: false });

test("categoryTree nests by '/' and sorts classes by display name", () => {
  const t = categoryTree([def("b", "sc/sampling"), def("a", "sc/sampling"), def("c", "sc"), def("d", ""), def("e", " x / y ")]);
  assert.deepEqual([...t.children.keys()], ["sc", "x"]);
  assert.deepEqual(t.defs.map((d) => d.name), ["d"]); // no category: at the root
  const sc = t.children.get("sc");
  assert.equal(sc.path, "sc");
  assert.deepEqual(sc.defs.map((d) => d.name), ["c"]);
  const sampling = sc.children.get("sampling");
  assert.equal(sampling.path, "sc/sampling");
  assert.deepEqual(sampling.defs.map((d) => d.name), ["a", "b"]);
  assert.equal(t.children.get("x").children.get("y").path, "x/y"); // spaces around parts trimmed
});

test("unionBox pads the union; none gives null", () => {
  assert.equal(unionBox([]), null);
  assert.deepEqual(unionBox([[0, 0, 10, 10], [-5, 20, 3, 30]], 1), [-6, -1, 11, 31]);
});

test("fitFrame keeps the aspect and centres the short side", () => {
  const f = fitFrame([0, 0, 400, 100], 200, 100);
  assert.equal(f.scale, 0.5);
  assert.deepEqual([f.ox, f.oy], [0, 25]); // 50 px tall drawing in a 100 px map
  const g = fitFrame([-100, -100, 100, 100], 200, 100);
  assert.equal(g.scale, 0.5);
  assert.deepEqual([g.ox + -100 * g.scale, g.ox + 100 * g.scale], [50, 150]);
});

test("visibleBox and centredOffset invert each other", () => {
  const view = { offset: [100, -50], scale: 2 };
  assert.deepEqual(visibleBox(view, 800, 600), [-50, 25, 350, 325]);
  const off = centredOffset(150, 175, 2, 800, 600);
  const b = visibleBox({ offset: off, scale: 2 }, 800, 600);
  assert.deepEqual([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], [150, 175]);
});
