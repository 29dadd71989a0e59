"""Typed application keys and small request helpers shared by the route modules."""
from __future__ import annotations

import asyncio

from dataclasses import dataclass
from typing import Any, Mapping

from aiohttp import web

from api import strict_json
from config import Config
from engine.executor import Executor
from engine.schema import Node
from engine.store import Store
from engine.worker import Worker


@dataclass
class Services:
    """Everything the handlers need, stored once on the app under a typed key."""

    config: Config
    registry: Mapping[str, type[Node]]
    env: Any
    store: Store
    executor: Executor
    worker: Worker
    hub: Any  # api.ws.Hub (kept untyped here to avoid an import cycle)


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


# Scalar body fields and query integers end up in SQLite INTEGER columns and in JS clients.
MAX_SCALAR = 2**63 - 1


def json_response(data: Any, *, status: int = 200, **kwargs: Any) -> web.Response:
    """``web.json_response`` whose body never holds ``NaN``/``Infinity`` (see strict_json)."""
    return web.json_response(data, status=status, dumps=strict_json.dumps, **kwargs)


def json_error(status: int, message: str, type_: str = "bad_request", **extra: Any) -> web.Response:
    """A JSON error body; every failure path of the API uses this shape."""
    body = {"error": {"type": type_, "message": message, "details": "", "extra_info": extra}}
    return json_response(body, status=status)


def call_on_loop(loop: asyncio.AbstractEventLoop | None, fn: Any, *args: Any) -> None:
    """Run ``fn(*args)`` on `loop` from any thread; nothing when the loop is gone (shutting down)."""
    if loop is None or loop.is_closed():
        return
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # closed between the check and the call
        pass


class BadRequest(Exception):
    """Raised by helpers; the error middleware turns it into a 400 JSON response."""


INLINE_PARSE_BYTES = 256 * 1024  # bigger bodies (up to --max-body-mb) are parsed off the loop


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The parsed JSON body; an empty body is ``{}`` when `optional`.

    Too large -> 413 (client_max_size); invalid UTF-8, malformed, too deep, non-finite or
    out-of-range numbers, lone surrogates -> BadRequest naming the limit or the path.
    """
    raw = await request.read()  # enforces client_max_size (413)
    if not raw.strip():
        if optional:
            return {}
        raise BadRequest("request body must be JSON")
    try:
        if len(raw) <= INLINE_PARSE_BYTES:
            return strict_json.parse(raw)
        return await asyncio.to_thread(strict_json.parse, raw)  # keep the loop serving others
    except strict_json.JSONRefused as exc:
        raise BadRequest(str(exc)) from None


async def read_object(request: web.Request, *, optional: bool = False) -> dict:
    body = await read_json(request, optional=optional)
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def want(body: dict, key: str, types: type | tuple, default: Any = None) -> Any:
    """``body[key]`` checked against `types`; JSON true/false never passes as a number."""
    value = body.get(key)
    if value is None:
        return default
    allowed = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise BadRequest(f"'{key}' has the wrong type")
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and abs(value) > MAX_SCALAR:
        raise BadRequest(f"'{key}' is out of range (at most {MAX_SCALAR} in magnitude)")
    return value


def query_int(request: web.Request, key: str, default: int | None = None) -> int | None:
    """A non-negative integer query parameter of at most MAX_SCALAR; else BadRequest."""
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    # Length first: int() of thousands of digits is slow, then refused with a ValueError.
    if len(raw.strip()) > len(str(MAX_SCALAR)):
        raise BadRequest(f"query parameter '{key}' is out of range (at most {MAX_SCALAR})")
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter '{key}' must be an integer") from None
    if value < 0:
        raise BadRequest(f"query parameter '{key}' must not be negative")
    if value > MAX_SCALAR:
        raise BadRequest(f"query parameter '{key}' is out of range (at most {MAX_SCALAR})")
    return value


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
