"""aiohttp route modules. Every route is served bare and under ``/api`` (as ComfyUI does)."""
from __future__ import annotations

import functools

from aiohttp import web

from api import downloads, files, info, jobs, prompt, strict_json, uploads_mask, workflows
from api.common import BadRequest
from api.static import register_static
from api.ws import ws_handler

ROUTE_MODULES = (prompt, jobs, files, uploads_mask, info, workflows, downloads)
# Longest path parameter (prompt id, node class, model folder) a route looks up; ids are <= 200.
MAX_PATH_PARAM = 256


def _check_text(kind: str, name: str, value: str) -> None:
    if strict_json.has_surrogate(value):
        raise BadRequest(f"{kind} '{name}' is not valid Unicode")


def guarded(handler):
    """`handler` behind the checks every route shares, so no route can forget one.

    Before: path parameters of at most MAX_PATH_PARAM characters, path and query values valid
    Unicode (else 400 naming the parameter). Replies are written by ``common.json_response``,
    which never writes a bare ``NaN``/``Infinity``.
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
        return await handler(request)
    return route


def register_routes(app: web.Application) -> None:
    """Add every API route twice (bare and ``/api``), then the static editor catch-all."""
    routes = [r for module in ROUTE_MODULES for r in module.ROUTES]
    routes.append(("GET", "/ws", ws_handler))
    for prefix in ("", "/api"):
        for method, path, handler in routes:
            app.router.add_route(method, prefix + path, guarded(handler))
    register_static(app, guarded)
    downloads.install(app)
