"""ComfyUI editor workflow (litegraph schema 0.4 or 1) -> our workflow document.

``convert(workflow, registry) -> Converted(document, missing_classes)``; the API prompt is then
``engine.workflow.document_to_prompt(document, registry)``. Rules (shared spec comfy_api.md §3):

* positional ``widgets_values`` are named by the class's widget inputs in ``/object_info`` order
  (required, then optional); the control-after-generate word after a seed-like INT is not an
  input (it is kept as ``ui.seed_control``), and extra trailing values (LoadImage's upload
  button) are dropped. A dict ``widgets_values`` is taken by name.
* links follow through ``Reroute`` nodes, expanded subgraph/group-node boundaries and bypassed
  nodes (mode 4: output k takes the input at slot k if its type matches, else the first input
  of that type); a ``PrimitiveNode`` source puts its value into the target input; a muted
  (mode 2) or missing source drops the link (a widget input then keeps its own value).
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

from engine.comfy_graph import ConvertError, FlatNode, Flattener, \
    bypass_pick, is_control_word, is_editor_workflow, pair
from engine.schema import INT, Node

__all__ = ["ConvertError", "Converted", "convert", "is_editor_workflow", "widget_order"]

NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
SEED_NAMES = frozenset({"seed", "noise_seed"})  # the frontend's legacy seed-like names
MAX_HOPS = 10_000  # Reroute/bypass chain walk bound (a cycle stops here)

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

    def spec(self, class_type: str) -> list[tuple[str, bool]] | None:
        cls = self.registry.get(class_type)
        return widget_order(cls) if cls is not None else None

    def resolve(self, link: tuple[str, int] | None) -> tuple[str, Any] | None:
        """Walk to the real source of a link: ``("link", [id, slot])``, ``("value", v)`` or None."""
        for _ in range(MAX_HOPS):
            if link is None:
                return None
            src = self.nodes.get(link[0])
            if src is None or src.mode == 2:
                return None
            slot = link[1]
            if src.type == "PrimitiveNode" and src.kind == "node":
                values = src.widgets if isinstance(src.widgets, list) else []
                return ("value", values[0]) if values else None
            if src.kind == "pass" or src.type == "Reroute":
                index = 0 if src.type == "Reroute" else slot
                link = src.inputs[index].link if index < len(src.inputs) else None
            elif src.mode == 4:
                link = self._bypass(src, slot)
            else:
                return ("link", [src.id, slot])
        raise ConvertError(f"link into {link[0]!r} loops through Reroute or bypassed nodes")

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
        for slot in node.inputs:
            found = self.resolve(slot.link)
            if found is not None:
                inputs[slot.widget or slot.name] = found[1] if found[0] == "link" \
                    else _literal(found[1])
        return {"class_type": node.type, "inputs": inputs, "ui": ui}

    def document(self, workflow: dict) -> dict:
        nodes: dict[str, dict] = {}
        notes: list[dict] = []
        for node in self.order:
            if node.kind == "pass" or node.mode in (2, 4) or node.type in ("Reroute", "PrimitiveNode"):
                continue
            if node.type in NOTE_TYPES:
                values = node.widgets if isinstance(node.widgets, list) else []
                ui = self.ui(node)
                notes.append({"id": f"note{node.id}", "pos": ui.get("pos", [0, 0]),
                              "size": ui.get("size", [260, 120]),
                              "text": str(values[0]) if values else ""})
                continue
            nodes[node.id] = self.entry(node)
        ui: dict[str, Any] = {"notes": notes, "groups": _groups(workflow)}
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
