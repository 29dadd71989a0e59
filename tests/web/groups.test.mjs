// Unit tests of the group geometry (web/editor/group_model.js): boxes around a selection,
// containment, nesting order and what a group drag carries.
import test from "node:test";
import assert from "node:assert/strict";
import { boundsAround, nestedIn, depths, drawOrder, dragSet, isPinned, moved, resized, rounded, titleHeight, MIN_SIZE } from "../../web/editor/group_model.js";

const G = (x, y, w, h, extra = {}) => ({ title: "g", bounding: [x, y, w, h], ...extra });

test("a new group wraps its boxes with padding and room for the title bar", () => {
  const b = boundsAround([[100, 100, 300, 200], [250, 150, 400, 380]], 10, 24);
  assert.deepEqual(b, [90, 100 - 10 - titleHeight({ font_size: 24 }), 320, 280 + 20 + 34]);
  assert.equal(titleHeight({}), 34);
  assert.equal(titleHeight({ font_size: 10 }), 14);
  assert.equal(boundsAround([]), null);
});

test("nesting is geometric and never circular", () => {
  const groups = [G(0, 0, 1000, 800), G(50, 50, 300, 300), G(60, 60, 100, 100), G(900, 900, 50, 50)];
  assert.equal(nestedIn(groups, 0, 1), true);
  assert.equal(nestedIn(groups, 1, 0), false);
  assert.equal(nestedIn(groups, 0, 3), false);
  assert.deepEqual(depths(groups), [0, 1, 2, 0]);
  // An inner group is drawn after (on top of) the groups around it, whatever the list order.
  assert.deepEqual(drawOrder([groups[2], groups[1], groups[0]]), [2, 1, 0]);
  const same = [G(0, 0, 100, 100), G(0, 0, 100, 100)];
  assert.equal(nestedIn(same, 0, 1), true);
  assert.equal(nestedIn(same, 1, 0), false);
  assert.deepEqual(drawOrder(same), [0, 1]);
});

test("a group drag carries the items and groups wholly inside it", () => {
  const groups = [G(0, 0, 1000, 800), G(50, 50, 300, 300), G(900, 0, 300, 300)];
  const items = [
    { id: "in", box: [400, 400, 500, 500] },
    { id: "inner", box: [60, 100, 200, 200] },
    { id: "straddles", box: [950, 100, 1100, 200] },
    { id: "pinned", box: [500, 100, 600, 200], pinned: true },
  ];
  assert.deepEqual(dragSet(groups, 0, items), { groups: [1], items: ["in", "inner"] });
  assert.deepEqual(dragSet(groups, 1, items), { groups: [], items: ["inner"] });
});

test("a pinned group does not move, and a pinned nested group keeps its contents in place", () => {
  const groups = [G(0, 0, 1000, 800), G(50, 50, 300, 300, { flags: { pinned: true } }), G(60, 100, 100, 100)];
  const items = [{ id: "a", box: [200, 200, 300, 300] }, { id: "b", box: [500, 500, 600, 600] }];
  assert.equal(dragSet(groups, 1, items), null);
  assert.deepEqual(dragSet(groups, 0, items), { groups: [], items: ["b"] });
  assert.equal(isPinned({ locked: true }), true);
  assert.equal(isPinned({ flags: {} }), false);
});

test("moves, resizes and rounding keep the bounding's shape", () => {
  assert.deepEqual(moved([10, 20, 300, 200], 5, -7), [15, 13, 300, 200]);
  assert.deepEqual(resized([10, 20, 300, 200], 50, -500), [10, 20, 350, MIN_SIZE[1]]);
  assert.deepEqual(rounded([1.4, 2.6, 3.5, 0.2]), [1, 3, 4, 0]);
});
