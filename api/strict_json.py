"""Strict JSON in and out: what a client sends is refused before it can break a later reply.

Python's ``json`` accepts ``NaN``/``Infinity`` literals, turns ``1e400`` into ``inf``, recurses
once per nesting level and keeps lone UTF-16 surrogates (``"\\ud800"``) in strings. Each of
those was accepted by a route and only failed later -- when SQLite encoded the string, when a
reply carried a bare ``Infinity`` no browser can parse, or when ``/queue`` serialised a
1,000-deep ``extra_data``. ``parse`` refuses them all at the door, naming where they are.
"""
from __future__ import annotations

import json
import logging
import math
import re
from itertools import accumulate
from typing import Any

log = logging.getLogger("cascade.json")

# Real workflows nest 6 deep (a document's node ui); a prompt body wraps that in ~3 more.
MAX_DEPTH = 64
# ComfyUI seeds go up to 2**64-1; no JSON number a route accepts needs more digits than that.
MAX_INT = 2**64 - 1

# A JSON string (escapes included). An unterminated one runs to the end of the text (a lone
# trailing backslash too), so a match never fails after scanning ahead: a failed match would be
# retried from every later quote, and '"' + '\\"' * n would cost n² steps on the event loop.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_NOT_BRACKET = re.compile(r'[^\[\]{}]+')
_DELTA = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONRefused(ValueError):
    """The body is not JSON this server accepts; the message names the limit or the place."""


class _Refused:
    """Stands in for a number the parser met, so the walk afterwards can name its path."""

    __slots__ = ("literal", "why")

    def __init__(self, literal: str, why: str):
        self.literal, self.why = literal, why


def nesting_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting outside strings; linear and recursion-free.

    Strings are cut out first (JSON's own string grammar, escapes included), so a bracket in a
    string never counts, and the parser can never be deeper at any point than this count.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DELTA.__getitem__, brackets.encode())), default=0)


def _parse_constant(name: str) -> _Refused:
    return _Refused(name, "is not a finite number")


def _parse_float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(text, "is out of the 64-bit float range")


def _parse_int(text: str) -> int | _Refused:
    # Refuse by length before int() (which itself refuses > 4,300 digits with a ValueError).
    if len(text.lstrip("-")) > len(str(MAX_INT)) or abs(int(text)) > MAX_INT:
        shown = text if len(text) <= 24 else text[:20] + f"... ({len(text)} digits)"
        return _Refused(shown, f"is out of range (at most {MAX_INT} in magnitude)")
    return int(text)


def _noting(hook, refused: list):
    """`hook`, remembering whether it ever refused (so clean bodies skip the tree walk)."""
    def wrapped(text: str) -> Any:
        value = hook(text)
        if isinstance(value, _Refused):
            refused.append(value)
        return value
    return wrapped


def _where(path: tuple) -> str:
    """``extra_data.a[3].b``; a key that is not Unicode is shown escaped, never echoed raw."""
    out = ""
    for part in path:
        if isinstance(part, str):
            part = part.encode("utf-8", "backslashreplace").decode("utf-8")
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "body"


def has_surrogate(text: str) -> bool:
    """True when `text` holds a lone surrogate: it cannot be encoded (SQLite, files, replies)."""
    return _SURROGATE.search(text) is not None


def _check_string(text: str, path: tuple) -> None:
    found = _SURROGATE.search(text)
    if found:
        raise JSONRefused(f"'{_where(path)}': string contains a lone UTF-16 surrogate "
                          f"(\\u{ord(found.group()):04x}), which is not Unicode")


def _check_tree(value: Any) -> None:
    """Raise JSONRefused at the first refused number or surrogate string, naming its path."""
    stack: list[tuple[Any, tuple]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                _check_string(key, path + (key,))
                stack.append((item, path + (key,)))
        elif isinstance(node, list):
            stack.extend((item, path + (i,)) for i, item in enumerate(node))
        elif isinstance(node, str):
            _check_string(node, path)
        elif isinstance(node, _Refused):
            raise JSONRefused(f"'{_where(path)}': {node.literal} {node.why}")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a request body as strict JSON (RFC 8259: UTF-8, finite numbers).

    Raises JSONRefused (a ValueError) for invalid UTF-8, malformed JSON, nesting deeper than
    `max_depth`, ``NaN``/``Infinity``, floats beyond the float range, integers beyond
    ``MAX_INT`` in magnitude and lone surrogates; the message names the path when it can.
    """
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONRefused(f"body is not valid UTF-8 (byte {exc.start})") from None
    else:
        text = raw
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JSONRefused(f"JSON nested {depth} levels deep; the limit is {max_depth}")
    refused: list[_Refused] = []
    try:
        value = json.loads(text, parse_constant=_noting(_parse_constant, refused),
                           parse_float=_noting(_parse_float, refused),
                           parse_int=_noting(_parse_int, refused))
    except RecursionError:  # unreachable after the depth scan; kept as a last guard
        raise JSONRefused(f"JSON nested too deeply; the limit is {max_depth}") from None
    except ValueError as exc:
        raise JSONRefused(f"malformed JSON: {exc}") from None
    # Strict UTF-8 text only holds surrogates via \uD800-\uDFFF escapes; most clients escape all
    # non-ASCII, so walk the tree only when such an escape is there.
    if refused or _SURROGATE_ESCAPE.search(text):
        _check_tree(value)
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes ``NaN``/``Infinity``: such values become ``null``.

    Input is refused at parse time, so a non-finite number here is a server bug (a node's ui
    output, an old database row); it is logged and the reply stays parseable for browsers.
    `kwargs` go to ``json.dumps`` (e.g. ``default=str``).
    """
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        log.error("a reply held a non-finite number; sent as null instead", exc_info=True)
        return json.dumps(finite_copy(value), allow_nan=False, **kwargs)


def finite_copy(value: Any) -> Any:
    """A copy of a JSON-like tree with non-finite floats replaced by None (iterative)."""
    root: list = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        node, parent, key = stack.pop()
        if isinstance(node, dict):
            parent[key] = copy = dict.fromkeys(node)  # keys now: the walk fills them in reverse
            stack.extend((item, copy, k) for k, item in node.items())
        elif isinstance(node, (list, tuple)):
            parent[key] = copy = [None] * len(node)
            stack.extend((item, copy, i) for i, item in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            parent[key] = None
        else:
            parent[key] = node
    return root[0]
