"""aiohttp route modules. Every route is served bare and under ``/api`` (as ComfyUI does)."""
from __future__ import annotations

from aiohttp import web

from api import files, info, prompt
from api.static import register_static
from api.ws import ws_handler

ROUTE_MODULES = (prompt, files, info)


def register_routes(app: web.Application) -> None:
    """Add every API route twice (bare and ``/api``), then the static editor catch-all."""
    routes = [r for module in ROUTE_MODULES for r in module.ROUTES]
    routes.append(("GET", "/ws", ws_handler))
    for prefix in ("", "/api"):
        for method, path, handler in routes:
            app.router.add_route(method, prefix + path, handler)
    register_static(app)
