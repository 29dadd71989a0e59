"""The editor's static files: ``web/`` at ``/`` (``index.html``), ``web/workflows/`` included."""
from __future__ import annotations

import mimetypes

from aiohttp import web

from api.common import json_error, json_response, services
from api.files import safe_join
from runtime.workflows import shipped_workflow

# .mjs/.js must be served as JavaScript for <script type="module">.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")

# The editor's pages: scripts and styles only from our own files (no inline script can run even if
# markup were injected), images also from blob: (live previews) and data: (the favicon), sockets
# and fetches to ourselves only, no plugins, no <base>, framed only by our own origin.
EDITOR_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
              "img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; "
              "base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
EDITOR_HEADERS = {"Content-Security-Policy": EDITOR_CSP, "X-Frame-Options": "SAMEORIGIN"}


async def static_file(request: web.Request) -> web.StreamResponse:
    web_dir = services(request).config.web_dir
    rel = request.match_info.get("path", "")
    if rel in ("", "/") or rel.endswith("/"):
        rel = rel + "index.html"
    if rel.startswith("/") or "\\" in rel or any(p in ("..", ".") for p in rel.split("/")):
        return json_error(400, "invalid path")
    if rel.startswith("workflows/") and rel.endswith(".json") and rel.count("/") == 1:
        # Shipped workflows name the official files; the environment fits them to what is on disk
        # (demo weights in --demo mode), so the editor never opens a workflow that cannot run.
        svc = services(request)
        if hasattr(svc.env, "weight_files"):  # a weights-folder environment (stub test nodes have none)
            doc = shipped_workflow(rel[len("workflows/"):-len(".json")], svc.env, svc.registry)
            if doc is not None:
                return json_response(doc, headers={"Cache-Control": "no-cache", **EDITOR_HEADERS})
    path = safe_join(web_dir, "", rel)
    if not path.is_file():
        if rel == "index.html":
            return web.Response(text="<!doctype html><title>Cascade Studio</title>"
                                     "<p>The editor is not installed (web/index.html missing).",
                                content_type="text/html", headers=EDITOR_HEADERS)
        return json_error(404, "not found", "not_found")
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # The editor changes often during development; revalidate instead of caching stale JS.
    return web.FileResponse(path, headers={"Content-Type": ctype, "Cache-Control": "no-cache",
                                           **EDITOR_HEADERS})


def register_static(app: web.Application, wrap=lambda handler: handler) -> None:
    """Registered last so every API route matches first; `wrap` adds the shared route checks."""
    app.router.add_get("/{path:.*}", wrap(static_file))
