"""ComfyUI editor workflow (litegraph schema 0.4 or 1) -> our workflow document.

``convert(workflow, registry) -> Converted(document, missing_classes)``; the API prompt is then
``engine.workflow.document_to_prompt(document, registry)``. Rules (shared spec comfy_api.md §3):

* positional ``widgets_values`` are named by the class's widget inputs in ``/object_info`` order
  (required, then optional); the control-after-generate word after a seed-like INT is not an
  input (it is kept as ``ui.seed_control``), and extra trailing values (LoadImage's upload
  button) are dropped. A dict ``widgets_values`` is taken by name.
* links follow through ``Reroute`` nodes and expanded subgraph/group-node boundaries; a
  ``PrimitiveNode`` source puts its value into the target input; a missing source drops the link.
* bypassed (mode 4) and muted (mode 2) nodes of a known class stay nodes with ``ui.mode``
  ``"bypass"``/``"mute"``; the server resolves them (engine.workflow), and each link ending at one
  is checked to run what ComfyUI's resolution over the file's sockets gives (bypass: output k takes
  the input at slot k if its type matches, else the first input of that type; mute: the link is
  dropped and a widget input keeps its own value); where it would not, ComfyUI's answer is wired.
  Those of an unknown class are resolved away here by the same rule.
* reroutes: each ``Reroute`` node a link passes (point ``"rn<id>"`` at its centre) and each native
  reroute (``"r<id>"``; 0.4 ``extra.reroutes``/``linkExtensions``, v1 ``reroutes``/link
  ``parentId``) becomes a document ``ui.reroutes`` entry ``{id, pos, parent?}`` (parent: the next
  point towards the source); the target node's ``ui.link_reroutes`` ``{input: id}`` names the
  point nearest it.
* ``Note``/``MarkdownNote`` become ``ui.notes`` entries ``{id, pos, size, text}`` as the editor
  stores them; groups become ``ui.groups`` ``[{title, bounding, color, font_size, flags: {pinned}}]``; the view
  (``extra.ds``) becomes ``ui.view``; each node keeps ``pos``, ``size``, ``title``, ``color``,
  ``bgcolor`` in its ``ui``.
* a class the registry lacks is kept with the inputs its links give, and
  ``ui.comfy = {"widgets_values", "inputs": [{name, type}], "outputs": [{name, type}]}`` (its
  sockets from the file, so the editor can draw it and links survive); its name is reported in
  ``missing_classes``.

Errors: ConvertError (a ValueError) naming what is malformed; never another exception type for
any JSON value (the converter's own bugs aside).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from engine.comfy_reroutes import document_reroutes
from engine.comfy_graph import ConvertError, FlatNode, Flattener, \
    bypass_pick, is_control_word, is_editor_workflow, pair
from engine.schema import INT, Node
from engine.workflow import _through_modes as through_modes  # the server's own walk

__all__ = ["ConvertError", "Converted", "convert", "is_editor_workflow", "widget_order"]

NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
SEED_NAMES = frozenset({"seed", "noise_seed"})  # the frontend's legacy seed-like names
MAX_HOPS = 10_000  # Reroute/bypass chain walk bound (a cycle stops here)
MODES = {2: "mute", 4: "bypass"}  # litegraph node modes kept as our ``ui.mode``
REROUTE_SIZE = (75, 26)  # litegraph's Reroute node box when the file gives none

Registry = Mapping[str, type[Node]]


@dataclass
class Converted:
    document: dict
    missing_classes: list[str]


def widget_order(cls: type[Node]) -> list[tuple[str, bool]]:
    """``[(input name, seed-like)]`` of a class's widget inputs in ``/object_info`` order."""
    ordered = [i for i in cls.INPUTS if not i.optional] + [i for i in cls.INPUTS if i.optional]
    return [(i.name, i.type == INT and (i.seed or i.name in SEED_NAMES))
            for i in ordered if i.is_widget]


def name_widgets(spec: list[tuple[str, bool]], values: Any) -> tuple[dict, str | None]:
    """Positional (or by-name) widget values -> ``({input: value}, seed control word | None)``."""
    if isinstance(values, dict):
        return {n: values[n] for n, _ in spec if n in values}, None
    if not isinstance(values, list):
        return {}, None
    named, control, pos = {}, None, 0
    for name, seed in spec:
        if pos >= len(values):
            break
        named[name] = values[pos]
        pos += 1
        if seed and pos < len(values) and is_control_word(values[pos]):
            control = control or values[pos]
            pos += 1
    return named, control


def _literal(value: Any) -> Any:
    """A list literal must be wrapped, or the API format would read it as a link."""
    return {"__value__": value} if isinstance(value, list) else value


class _Converter:
    def __init__(self, workflow: dict, registry: Registry):
        self.registry = registry
        flat = Flattener(workflow, self.spec)
        flat.graph(workflow, 0, "workflow")
        self.nodes = {n.id: n for n in flat.nodes}
        self.order = flat.nodes
        self.missing: list[str] = []
        self.native = flat.reroutes
        self.points: dict[str, list[float]] = {}  # reroute point id -> pos, as the walks meet them
        # (entry, input, ComfyUI's resolution, reroute points) of links ending at a kept node
        self.pending: list[tuple[dict, str, tuple[str, Any] | None, list[str]]] = []
        self.routes: list[tuple[dict, str, list[str]]] = []  # (entry, input, points) kept links

    def spec(self, class_type: str) -> list[tuple[str, bool]] | None:
        cls = self.registry.get(class_type)
        return widget_order(cls) if cls is not None else None

    def kept(self, node: FlatNode) -> bool:
        """A bypassed or muted node of a known class stays a node with ``ui.mode``; one of an
        unknown class (a subgraph instance, a missing custom node) is resolved away as ComfyUI's
        frontend does, so a file that runs in ComfyUI because that node is off still runs."""
        return node.kind == "node" and node.mode in MODES and node.type in self.registry \
            and node.type not in NOTE_TYPES

    def resolve(self, link: tuple[str, int] | None, reroute: str | None = None,
                stop_at_kept: bool = False) -> tuple[tuple[str, Any] | None, list[str]]:
        """Walk to the real source of a link: ``(("link", [id, slot]) | ("value", v) | None,
        reroute point ids from the target towards the source)``. `reroute` is the native reroute
        nearest the target; with `stop_at_kept` the walk ends at a kept bypassed/muted node."""
        points: list[str] = []
        collect = True  # past a node resolved away the drawn link no longer passes its reroutes
        for _ in range(MAX_HOPS):
            if collect:
                points += self._native_chain(reroute)
            if link is None:
                return None, points
            src = self.nodes.get(link[0])
            if src is None:
                return None, points
            if stop_at_kept and self.kept(src):
                return ("link", [src.id, link[1]]), points
            if src.mode == 2:
                return None, points
            slot = link[1]
            if src.type == "PrimitiveNode" and src.kind == "node":
                values = src.widgets if isinstance(src.widgets, list) else []
                return (("value", values[0]) if values else None), points
            if src.kind == "pass" or src.type == "Reroute":
                if src.type == "Reroute" and src.kind == "node" and collect:
                    points.append(self._reroute_node(src))
                index = 0 if src.type == "Reroute" else slot
                inp = src.inputs[index] if index < len(src.inputs) else None
                link, reroute = (inp.link, inp.reroute) if inp is not None else (None, None)
            elif src.mode == 4:
                link, reroute, collect = self._bypass(src, slot), None, False
            else:
                return ("link", [src.id, slot]), points
        raise ConvertError(f"link into {link[0]!r} loops through Reroute or bypassed nodes")

    def _native_chain(self, reroute: str | None) -> list[str]:
        """Doc ids of a native reroute and its parents (towards the source), a cycle cut."""
        chain: list[str] = []
        while reroute is not None and reroute in self.native and f"r{reroute}" not in chain:
            chain.append(f"r{reroute}")
            self.points.setdefault(f"r{reroute}", self.native[reroute]["pos"])
            reroute = self.native[reroute]["parent"]
        return chain

    def _reroute_node(self, node: FlatNode) -> str:
        """A legacy ``Reroute`` node becomes a point at its centre (litegraph: pos is the corner)."""
        pos = pair(node.raw.get("pos")) or [0, 0]
        size = pair(node.raw.get("size")) or list(REROUTE_SIZE)
        self.points.setdefault(f"rn{node.id}", [pos[0] + node.offset[0] + size[0] / 2,
                                                pos[1] + node.offset[1] + size[1] / 2])
        return f"rn{node.id}"

    @staticmethod
    def _bypass(node: FlatNode, slot: int) -> tuple[str, int] | None:
        want = node.outputs[slot].type if slot < len(node.outputs) else None
        return bypass_pick(slot, want, [(inp.type, inp.link) for inp in node.inputs])

    def ui(self, node: FlatNode) -> dict:
        raw = node.raw
        ui: dict[str, Any] = {}
        pos = pair(raw.get("pos"))
        if pos is not None:
            ui["pos"] = [pos[0] + node.offset[0], pos[1] + node.offset[1]]
        size = pair(raw.get("size"))
        if size is not None:
            ui["size"] = size
        for key in ("title", "color", "bgcolor"):
            if isinstance(raw.get(key), str):
                ui[key] = raw[key]
        # The editor's collapse and pin (web/editor/node_flags.js) are ComfyUI's node flags.
        flags = raw.get("flags")
        if isinstance(flags, dict):
            for key in ("collapsed", "pinned"):
                if flags.get(key) is True:
                    ui[key] = True
        return ui

    def entry(self, node: FlatNode) -> dict:
        """The document entry of one executable (or unknown) node."""
        spec = self.spec(node.type)
        ui = self.ui(node)
        inputs: dict[str, Any] = {}
        if spec is None:
            if node.type not in self.missing:
                self.missing.append(node.type)
            ui["comfy"] = {"widgets_values": node.widgets,
                           "inputs": [{"name": s.name, "type": s.type} for s in node.inputs],
                           "outputs": [{"name": s.name, "type": s.type} for s in node.outputs]}
        else:
            named, control = name_widgets(spec, node.widgets)
            named.update(node.overrides)
            inputs = {k: _literal(v) for k, v in named.items()}
            if control:
                ui["seed_control"] = control
        entry = {"class_type": node.type, "inputs": inputs, "ui": ui}
        if self.kept(node):
            ui["mode"] = MODES[node.mode]
        for slot in node.inputs:
            name = slot.widget or slot.name
            found = self.resolve(slot.link)[0]  # ComfyUI's answer, what must run
            if found is None and slot.widget is not None:
                continue  # the widget keeps its own value, as before
            ours, points = self.resolve(slot.link, slot.reroute, stop_at_kept=True)
            if ours is not None and ours[0] == "link" and self.kept(self.nodes[ours[1][0]]):
                inputs[name] = ours[1]
                self.pending.append((entry, name, found, points))
            elif found is not None:
                inputs[name] = found[1] if found[0] == "link" else _literal(found[1])
                if found[0] == "link":
                    self.routes.append((entry, name, points))
        return entry

    def settle(self, nodes: dict) -> None:
        """Check each link ending at a kept bypassed/muted node: the server's walk over our class
        sockets (engine.workflow) must give what ComfyUI's over the file's sockets gave; where it
        would not (another slot order, a Primitive value behind a bypass), wire ComfyUI's answer."""
        for entry, name, found, points in self.pending:
            value, reason = through_modes(entry["inputs"][name], nodes, self.registry)
            same = reason is not None if found is None else \
                reason is None and found[0] == "link" and value == found[1]
            if same:
                self.routes.append((entry, name, points))
            elif found is None:
                del entry["inputs"][name]
            else:
                entry["inputs"][name] = found[1] if found[0] == "link" else _literal(found[1])
        for entry, name, points in self.routes:
            if points:
                entry["ui"].setdefault("link_reroutes", {})[name] = points[0]

    def document(self, workflow: dict) -> dict:
        nodes: dict[str, dict] = {}
        notes: list[dict] = []
        for node in self.order:
            if node.kind == "pass" or node.type in ("Reroute", "PrimitiveNode") \
                    or (node.mode in (2, 4) and not self.kept(node)):
                continue
            if node.type in NOTE_TYPES:
                values = node.widgets if isinstance(node.widgets, list) else []
                ui = self.ui(node)
                notes.append({"id": f"note{node.id}", "pos": ui.get("pos", [0, 0]),
                              "size": ui.get("size", [260, 120]),
                              "text": str(values[0]) if values else ""})
                continue
            nodes[node.id] = self.entry(node)
        self.settle(nodes)
        ui: dict[str, Any] = {"notes": notes, "groups": _groups(workflow)}
        reroutes = document_reroutes(self.routes, self.points)
        if reroutes:
            ui["reroutes"] = reroutes
        extra = workflow.get("extra")
        ds = extra.get("ds") if isinstance(extra, dict) else None
        if isinstance(ds, dict) and pair(ds.get("offset")) is not None \
                and isinstance(ds.get("scale"), (int, float)):
            # litegraph draws at (pos + offset) * scale; our editor at pos * scale + offset.
            ox, oy = pair(ds["offset"])
            ui["view"] = {"offset": [ox * ds["scale"], oy * ds["scale"]], "scale": ds["scale"]}
        return {"version": 1, "nodes": nodes, "ui": ui}


def _groups(workflow: dict) -> list[dict]:
    raw = workflow.get("groups")
    raw = [] if raw is None else raw
    if not isinstance(raw, list):
        raise ConvertError("'groups' must be a list")
    groups = []
    for g in raw:
        if not isinstance(g, dict):
            raise ConvertError("each group must be an object")
        box = g.get("bounding")
        if not (isinstance(box, list) and len(box) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise ConvertError(f"group {g.get('title')!r}: 'bounding' must be [x, y, w, h]")
        group = {"title": str(g.get("title", "")), "bounding": list(box)}
        for key in ("color", "font_size"):
            if g.get(key) is not None:
                group[key] = g[key]
        # ComfyUI pins a group with flags.pinned (older files: locked); our editor honours it too.
        flags = g.get("flags")
        if (isinstance(flags, dict) and flags.get("pinned") is True) or g.get("locked") is True:
            group["flags"] = {"pinned": True}
        groups.append(group)
    return groups


def convert(workflow: Any, registry: Registry) -> Converted:
    """Our document for a ComfyUI editor workflow; ConvertError when it is not one."""
    if not is_editor_workflow(workflow):
        raise ConvertError("not a ComfyUI editor workflow (needs a 'nodes' list and 'links')")
    conv = _Converter(workflow, registry)
    return Converted(conv.document(workflow), conv.missing)
