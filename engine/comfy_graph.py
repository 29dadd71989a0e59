"""Read ComfyUI's editor format into one flat list of nodes with resolved socket links.

Shapes read (see shared spec comfy_api.md §3.2): schema 0.4 (``links`` as
``[id, origin, origin_slot, target, target_slot, type]``) and schema 1 (links as objects,
``definitions.subgraphs``); legacy group nodes from ``extra.groupNodes``. Subgraph and group-node
instances are expanded here: inner nodes get ids ``"<instance>:<inner>"`` (ComfyUI's API ids), and
the instance's boundaries become pass-through nodes (``kind="pass"``: output slot k gives what
input slot k receives), so later link resolution walks them like Reroutes. Anything malformed
raises ConvertError naming the place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

MAX_NODES = 10_000  # after expansion; a real workflow has tens
MAX_DEPTH = 8  # subgraphs inside subgraphs
# A link may name a slot the node's own list lacks (the list is then padded to it), so the slot
# number must be bounded: 10**9 used to pad a billion slots. ComfyUI's nodes have tens at most.
MAX_SLOT = 1_000
CONTROL_WORDS = frozenset({"fixed", "increment", "decrement", "randomize"})


def is_control_word(value: object) -> bool:
    """The control-after-generate word after a seed (any JSON value may sit there: lists too)."""
    return isinstance(value, str) and value in CONTROL_WORDS


def bypass_pick(slot: int, out_type: str | None, inputs: list[tuple[str, Any]]) -> Any:
    """What a bypassed node's output `slot` (of type `out_type`) passes on, ComfyUI's rule.

    `inputs` is ``[(type, link or None)]`` in the node's input order. The input at the same
    slot when its type matches, else the first linked input of that type; None when none is.
    Shared by the ComfyUI converter (mode 4) and our document's ``ui.mode == "bypass"``.
    """
    if out_type is None:
        return None
    if slot < len(inputs) and inputs[slot][0] == out_type and inputs[slot][1] is not None:
        return inputs[slot][1]
    for kind, link in inputs:
        if kind == out_type and link is not None:
            return link
    return None

# (class name) -> list of widget specs [(name, seed_like)] or None when the class is unknown
WidgetSpec = Callable[[str], "list[tuple[str, bool]] | None"]


class ConvertError(ValueError):
    """The file is not a usable ComfyUI editor workflow; the message names what is wrong."""


@dataclass
class Slot:
    name: str
    type: str
    widget: str | None = None  # the widget this input socket stands for
    link: tuple[str, int] | None = None  # (source node id, source output slot)
    reroute: str | None = None  # flat id of the native reroute nearest this input on its link


@dataclass
class FlatNode:
    id: str
    type: str
    mode: int
    inputs: list[Slot]
    outputs: list[Slot]
    widgets: Any  # the file's widgets_values: a list, a dict, or None
    raw: dict  # the file's node, for positions, titles and colours
    kind: str = "node"  # "pass" for Reroutes and expanded-instance boundaries
    overrides: dict = field(default_factory=dict)  # widget values given on a group-node instance
    offset: tuple[float, float] = (0.0, 0.0)  # where an expanded inner node is drawn


def is_editor_workflow(value: Any) -> bool:
    """True for ComfyUI's editor format: ``nodes`` is a list and ``links`` is present."""
    return isinstance(value, dict) and isinstance(value.get("nodes"), list) and "links" in value


def pair(value: Any) -> list[float] | None:
    """``[x, y]`` from a list or the old ``{"0": x, "1": y}`` form; None when unusable."""
    if isinstance(value, dict):
        value = [value.get("0"), value.get("1")]
    if isinstance(value, (list, tuple)) and len(value) >= 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:2]):
        return [value[0], value[1]]
    return None


def _id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConvertError(f"{where}: node id must be a number or a string")
    return str(value)


def _slot_index(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_SLOT:
        raise ConvertError(f"{where}: slot must be an integer from 0 to {MAX_SLOT - 1}")
    return value


def _links(graph: dict, where: str) -> list[tuple[Any, str, int, str, int, Any]]:
    """(link id, origin id, origin slot, target id, target slot, parentId) of every link, either
    schema; parentId (v1 links only, else None) names the native reroute nearest the target."""
    raw = graph.get("links")
    raw = [] if raw is None else raw
    if not isinstance(raw, list):
        raise ConvertError(f"{where}: 'links' must be a list")
    out = []
    for i, link in enumerate(raw):
        at = f"{where} link #{i}"
        if isinstance(link, list):
            if len(link) < 5:
                raise ConvertError(f"{at}: expected [id, origin, origin_slot, target, target_slot, type]")
            lid, parent, o, os_, t, ts = link[0], None, link[1], link[2], link[3], link[4]
        elif isinstance(link, dict):
            lid, parent = link.get("id"), link.get("parentId")
            o, os_ = link.get("origin_id"), link.get("origin_slot")
            t, ts = link.get("target_id"), link.get("target_slot")
        elif link is None:
            continue  # the frontend leaves holes in old files
        else:
            raise ConvertError(f"{at}: a link must be a list or an object")
        out.append((lid, _id(o, at), _slot_index(os_, at), _id(t, at), _slot_index(ts, at), parent))
    return out



def _slots(raw: Any, where: str, key: str) -> list[Slot]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConvertError(f"{where}: '{key}' must be a list")
    slots = []
    for i, s in enumerate(raw):
        if not isinstance(s, dict):
            raise ConvertError(f"{where}: {key}[{i}] must be an object")
        widget = s.get("widget")
        wname = widget.get("name") if isinstance(widget, dict) else None
        slots.append(Slot(str(s.get("name", f"{key}{i}")), str(s.get("type", "*")).upper(),
                          wname if isinstance(wname, str) else None))
    return slots


class Flattener:
    """Expands one file into FlatNodes; `widget_spec` answers the widget order of a class."""

    def __init__(self, workflow: dict, widget_spec: WidgetSpec):
        self.widget_spec = widget_spec
        defs = workflow.get("definitions") or {}
        subgraphs = defs.get("subgraphs", []) if isinstance(defs, dict) else []
        if not isinstance(subgraphs, list):
            raise ConvertError("'definitions.subgraphs' must be a list")
        self.subgraphs = {s["id"]: s for s in subgraphs if isinstance(s, dict)
                          and isinstance(s.get("id"), str)}
        extra = workflow.get("extra") or {}
        groups = extra.get("groupNodes") if isinstance(extra, dict) else None
        self.group_nodes = groups if isinstance(groups, dict) else {}
        self.nodes: list[FlatNode] = []
        self.by_id: dict[str, FlatNode] = {}
        # native reroutes by flat id ("<instance>:<id>" inside a subgraph): {"pos", "parent"}
        self.reroutes: dict[str, dict] = {}

    def add(self, node: FlatNode) -> None:
        if len(self.nodes) >= MAX_NODES:
            raise ConvertError(f"workflow expands to more than {MAX_NODES} nodes")
        if node.id in self.by_id:
            raise ConvertError(f"node id {node.id!r} appears twice")
        self.nodes.append(node)
        self.by_id[node.id] = node

    def graph(self, graph: dict, depth: int, where: str,
              ids: Callable[[str], str] | None = None, origin: tuple[float, float] = (0, 0),
              prefix: str = "") -> None:
        """Add every node of `graph`; `ids` maps a file id to its flat id (default: itself),
        `prefix` makes its native reroute ids unique (a subgraph instance's id and ":")."""
        nodes = graph.get("nodes")
        if not isinstance(nodes, list):
            raise ConvertError(f"{where}: 'nodes' must be a list")
        ids = ids or (lambda i: i)
        made: dict[str, FlatNode] = {}
        for k, raw in enumerate(nodes):
            if not isinstance(raw, dict):
                raise ConvertError(f"{where}: nodes[{k}] must be an object")
            at = f"{where} node {raw.get('id')!r}"
            nid = _id(raw.get("id"), at)
            if not isinstance(raw.get("type"), str):
                raise ConvertError(f"{at}: 'type' must be a string")
            if nid in made:
                raise ConvertError(f"{at}: node id {nid!r} appears twice")
            node_mode = raw.get("mode", 0)
            node_mode = node_mode if isinstance(node_mode, int) and not isinstance(node_mode, bool) else 0
            made[nid] = FlatNode(ids(nid), raw["type"], node_mode,
                                 _slots(raw.get("inputs"), at, "inputs"),
                                 _slots(raw.get("outputs"), at, "outputs"),
                                 raw.get("widgets_values"), raw, offset=origin)
        # Imported here: comfy_reroutes takes ConvertError and pair from this module.
        from engine.comfy_reroutes import native_reroutes
        points, extensions = native_reroutes(graph, where)
        for rid, point in points.items():
            parent = point["parent"]
            self.reroutes[prefix + rid] = {
                "pos": [point["pos"][0] + origin[0], point["pos"][1] + origin[1]],
                "parent": prefix + parent if parent in points else None}
        for lid, o, os_, t, ts, parent in _links(graph, where):
            target = made.get(t) or self.by_id.get(ids(t))  # the latter: a subgraph's output
            if target is None:
                continue  # a link to a node that is not in the file: nothing to wire
            while len(target.inputs) <= ts:
                target.inputs.append(Slot(f"input{len(target.inputs)}", "*"))
            target.inputs[ts].link = (ids(o), os_)
            parent = extensions.get(lid, parent) if isinstance(lid, (int, str)) else parent
            parent = str(parent) if isinstance(parent, (int, str)) and not isinstance(parent, bool) else None
            target.inputs[ts].reroute = prefix + parent if parent in points else None
        for nid, node in made.items():
            self.expand(node, depth, where)

    def expand(self, node: FlatNode, depth: int, where: str) -> None:
        """Add `node`, or the inner nodes of the subgraph or group node it instantiates."""
        if node.mode == 2 or node.mode == 4:  # muted or bypassed: never expanded
            self.add(node)
            return
        sub = self.subgraphs.get(node.type)
        group = None
        if node.type.startswith(("workflow/", "workflow>")):
            group = self.group_nodes.get(node.type[len("workflow/"):])
        if sub is not None:
            if depth >= MAX_DEPTH:
                raise ConvertError(f"subgraph {node.type!r} nests deeper than {MAX_DEPTH} levels")
            self._subgraph(node, sub, depth)
        elif isinstance(group, dict):
            self._group(node, group)
        else:
            self.add(node)

    def _boundary(self, node: FlatNode, inner_in: str) -> None:
        """The instance's inputs move to a pass node; the instance itself becomes a pass node
        whose inputs the inner graph wires (its output slot k = what inner output k gives)."""
        self.add(FlatNode(inner_in, "", 0, node.inputs, [], None, node.raw, kind="pass"))
        node.kind, node.inputs = "pass", [Slot(o.name, o.type) for o in node.outputs]
        self.add(node)

    def _subgraph(self, node: FlatNode, sub: dict, depth: int) -> None:
        where = f"subgraph {sub.get('name') or node.type!r}"
        in_id = _id((sub.get("inputNode") or {}).get("id", -10), where)
        out_id = _id((sub.get("outputNode") or {}).get("id", -20), where)
        self._boundary(node, f"{node.id}:{in_id}")

        def ids(i: str) -> str:
            return node.id if i == out_id else f"{node.id}:{i}"
        self.graph(sub, depth + 1, where, ids, self._origin(node, sub.get("nodes")), f"{node.id}:")

    def _origin(self, node: FlatNode, inner: Any) -> tuple[float, float]:
        """Offset that draws inner nodes where the instance stood."""
        at = pair(node.raw.get("pos")) or [0, 0]
        spots = [pair(n.get("pos")) for n in inner or [] if isinstance(n, dict)]
        spots = [p for p in spots if p]
        if not spots:
            return (at[0], at[1])
        return (at[0] - min(p[0] for p in spots), at[1] - min(p[1] for p in spots))

    def _group(self, node: FlatNode, group: dict) -> None:
        """Legacy group node: inner nodes by ``index``; their unlinked inputs, then widgets, then
        unlinked (or ``external``) outputs become the instance's, in inner-node order."""
        at = f"group node {node.type!r}"
        inner = group.get("nodes")
        links = group.get("links") or []
        if not isinstance(inner, list) or not isinstance(links, list):
            raise ConvertError(f"{at}: 'nodes' and 'links' must be lists")
        internal_in, internal_out = set(), set()
        wired = []
        for link in links:
            if not isinstance(link, list) or len(link) < 4:
                raise ConvertError(f"{at}: a link must be [origin, slot, target, slot, ...]")
            o, os_, t, ts = (_id(link[0], at), _slot_index(link[1], at), _id(link[2], at),
                             _slot_index(link[3], at))
            internal_in.add((t, ts))
            internal_out.add((o, os_))
            wired.append((o, os_, t, ts))
        external = {(str(e[0]), e[1]) for e in group.get("external") or []
                    if isinstance(e, list) and len(e) >= 2}
        in_id = f"{node.id}:in"
        outer_inputs = node.inputs
        self._boundary(node, in_id)
        values = list(node.widgets) if isinstance(node.widgets, list) else []
        origin = self._origin(node, inner)
        made: dict[str, FlatNode] = {}
        next_in = next_out = 0
        for k, raw in enumerate(inner):
            if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
                raise ConvertError(f"{at}: nodes[{k}] must be an object with a 'type'")
            idx = _id(raw.get("index", k), at)
            flat = FlatNode(f"{node.id}:{idx}", raw["type"], 0, _slots(raw.get("inputs"), at, "inputs"),
                            _slots(raw.get("outputs"), at, "outputs"), raw.get("widgets_values"),
                            raw, offset=origin)
            made[idx] = flat
            for s, slot in enumerate(flat.inputs):
                if (idx, s) not in internal_in and slot.widget is None:
                    if next_in < len(outer_inputs):
                        slot.link = (in_id, next_in)
                    next_in += 1
            for name, seed in self.widget_spec(flat.type) or []:
                if not values:
                    break
                if any(sl.widget == name and (idx, s) in internal_in
                       for s, sl in enumerate(flat.inputs)):
                    continue
                flat.overrides[name] = values.pop(0)
                if seed and values and is_control_word(values[0]):
                    values.pop(0)
            for s, _ in enumerate(flat.outputs):
                if (idx, s) not in internal_out or (idx, s) in external:
                    if next_out < len(node.inputs):
                        node.inputs[next_out].link = (flat.id, s)
                    next_out += 1
        for o, os_, t, ts in wired:
            if t in made:
                target = made[t]
                while len(target.inputs) <= ts:
                    target.inputs.append(Slot(f"input{len(target.inputs)}", "*"))
                target.inputs[ts].link = (f"{node.id}:{o}", os_)
        for flat in made.values():
            self.add(flat)
