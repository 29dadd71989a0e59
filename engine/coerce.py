"""Literal coercion to widget types and socket type compatibility (ComfyUI's rules)."""
from __future__ import annotations

import math
from typing import Any

from engine.schema import BOOLEAN, COMBO, FLOAT, INT, STRING, Input


def types_compatible(received: str, expected: str) -> bool:
    """Exact match, ``*`` wildcard, comma-joined unions intersecting, or a string into a combo."""
    if received == expected or "*" in (received, expected):
        return True
    if expected == COMBO and received in (STRING, COMBO):
        return True
    return bool(set(received.split(",")) & set(expected.split(",")))


def coerce(inp: Input, value: Any) -> Any:
    """Coerce a literal to the input's widget type; raises ValueError/TypeError when impossible."""
    if isinstance(value, dict) and set(value) == {"__value__"}:
        value = value["__value__"]
    if inp.type == INT:
        if isinstance(value, bool) or isinstance(value, (dict, list)) or value is None:
            raise TypeError(f"not an integer: {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"not an integer: {value!r}")
        return int(value)
    if inp.type == FLOAT:
        if isinstance(value, bool) or isinstance(value, (dict, list)) or value is None:
            raise TypeError(f"not a number: {value!r}")
        result = float(value)
        if not math.isfinite(result):
            raise ValueError(f"not a finite number: {value!r}")
        return result
    if inp.type == STRING:
        if isinstance(value, (dict, list)) or value is None:
            raise TypeError(f"not a string: {value!r}")
        return str(value)
    if inp.type == BOOLEAN:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if isinstance(value, (bool, int)) and not isinstance(value, float):
            return bool(value)
        raise TypeError(f"not a boolean: {value!r}")
    if inp.type == COMBO:
        if isinstance(value, (dict, list)) or value is None:
            raise TypeError(f"not a choice: {value!r}")
        return value
    raise TypeError(f"input of type {inp.type} must be linked, got literal {value!r}")
