// Shared fixture of the editor's unit tests: two node classes and the graph Src 1 → Sink 2.x.
import { Graph, parseObjectInfo } from "../../web/editor/graph.js";

export const INFO = {
  Src: { input: { required: {} }, output: ["NUM"], name: "Src" },
  Sink: { input: { required: { x: ["NUM"], y: ["NUM"] } }, input_order: { required: ["x", "y"] }, output: [], name: "Sink", output_node: true },
};

/** Src 1 at (0, 0) linked to Sink 2's x at (400, 0). */
export function srcSink() {
  const g = new Graph(parseObjectInfo(INFO));
  g.addNode("Src", [0, 0]); // 1
  g.addNode("Sink", [400, 0]); // 2
  g.connect("1", 0, "2", "x");
  return g;
}
