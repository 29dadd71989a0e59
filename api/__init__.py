"""aiohttp route modules. Every route is served bare and under ``/api`` (as ComfyUI does)."""
from __future__ import annotations

import functools
import logging

from aiohttp import web

from api import files, info, jobs, prompt, strict_json, uploads_mask, workflows
from api.common import BadRequest
from api.static import register_static
from api.ws import ws_handler

ROUTE_MODULES = (prompt, jobs, files, uploads_mask, info, workflows)
# Longest path parameter (prompt id, node class, model folder) a route looks up; ids are <= 200.
MAX_PATH_PARAM = 256
log = logging.getLogger("cascade.server")


def _check_text(kind: str, name: str, value: str) -> None:
    if strict_json.has_surrogate(value):
        raise BadRequest(f"{kind} '{name}' is not valid Unicode")


def guarded(handler):
    """`handler` behind the checks every route shares, so no route can forget one.

    Before: path parameters of at most MAX_PATH_PARAM characters, path and query values valid
    Unicode (else 400 naming the parameter). After: a JSON reply never carries a bare
    ``NaN``/``Infinity`` (browsers refuse to parse it); one that does is logged and repaired.
    """
    @functools.wraps(handler)
    async def route(request: web.Request) -> web.StreamResponse:
        for name, value in request.match_info.items():
            if len(value) > MAX_PATH_PARAM:
                raise BadRequest(f"path parameter '{name}' is longer than {MAX_PATH_PARAM} "
                                 "characters")
            _check_text("path parameter", name, value)
        for name, value in request.query.items():
            _check_text("query parameter", name, name)
            _check_text("query parameter", name, value)
        response = await handler(request)
        if isinstance(response, web.Response) and response.content_type == "application/json" \
                and isinstance(response.body, bytes):
            fixed = strict_json.sanitize_body(response.body)
            if fixed is not None:
                log.error("%s %s replied with a non-finite number; sent as null",
                          request.method, request.path)
                response.body = fixed
        return response
    return route


def register_routes(app: web.Application) -> None:
    """Add every API route twice (bare and ``/api``), then the static editor catch-all."""
    routes = [r for module in ROUTE_MODULES for r in module.ROUTES]
    routes.append(("GET", "/ws", ws_handler))
    for prefix in ("", "/api"):
        for method, path, handler in routes:
            app.router.add_route(method, prefix + path, guarded(handler))
    register_static(app, guarded)
