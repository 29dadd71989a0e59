"""Serialise a node registry to ComfyUI's ``/object_info`` shape."""
from __future__ import annotations

from typing import Any, Mapping

from engine.schema import COMBO, FLOAT, INT, STRING, Input, Node

Registry = Mapping[str, type[Node]]

SEED_MAX = 0xFFFFFFFFFFFFFFFF


def input_options(inp: Input) -> dict[str, Any]:
    """The options dict of one input (second element of its ``[TYPE, {options}]`` entry)."""
    opts: dict[str, Any] = {}
    if inp.default is not None:
        opts["default"] = inp.default
    if inp.type in (INT, FLOAT):
        if inp.min is not None:
            opts["min"] = inp.min
        if inp.max is not None:
            opts["max"] = inp.max
        if inp.step is not None:
            opts["step"] = inp.step
        if inp.type == FLOAT and inp.step is not None:
            opts["round"] = inp.round if inp.round is not None else inp.step
    if inp.type == STRING and inp.multiline:
        opts["multiline"] = True
    if inp.seed:
        opts["control_after_generate"] = True
    if inp.upload:
        opts["image_upload"] = True
    if inp.tooltip:
        opts["tooltip"] = inp.tooltip
    if not inp.is_widget:
        opts.pop("default", None)
    return opts


def safe_choices(inp: Input, env: Any) -> list[str]:
    """The choice list, or [] when listing fails (a broken folder must not hide the catalogue)."""
    try:
        return inp.choice_list(env)
    except Exception:
        return []


def input_entry(inp: Input, env: Any) -> list:
    """``[TYPE, {options}]``; combos use the legacy form where TYPE is the choice list."""
    opts = input_options(inp)
    if inp.type == COMBO:
        return [safe_choices(inp, env), opts]
    return [inp.type, opts] if opts else [inp.type]


def node_info(name: str, cls: type[Node], env: Any) -> dict[str, Any]:
    """The ``/object_info`` entry of one node class."""
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for inp in cls.INPUTS:
        (optional if inp.optional else required)[inp.name] = input_entry(inp, env)
    info: dict[str, Any] = {
        "input": {"required": required},
        "input_order": {"required": list(required)},
        "output": [o.type for o in cls.OUTPUTS],
        "output_is_list": [False for _ in cls.OUTPUTS],
        "output_name": [o.name for o in cls.OUTPUTS],
        "name": name,
        "display_name": cls.TITLE or name,
        "description": cls.DESCRIPTION or (cls.__doc__ or "").strip().split("\n")[0],
        "python_module": cls.__module__,
        "category": cls.CATEGORY,
        "output_node": bool(cls.OUTPUT_NODE),
    }
    if optional:
        info["input"]["optional"] = optional
        info["input_order"]["optional"] = list(optional)
    tooltips = [o.tooltip for o in cls.OUTPUTS]
    if any(tooltips):
        info["output_tooltips"] = tooltips
    return info


def catalogue(registry: Registry, env: Any) -> dict[str, Any]:
    """All node classes, in registry order."""
    return {name: node_info(name, cls, env) for name, cls in registry.items()}
