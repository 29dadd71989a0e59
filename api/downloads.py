"""Weights downloads: start (official files, a set, or a pasted link), follow, cancel.

    POST /api/models/download   {"files": [NAME, ...]} | {"set": "lite"|"full"} | {"url": URL}
        -> {"task_id": ID, "tasks": [{"id", "name"}, ...]}   (task_id: the first; one task per file)
    GET  /api/downloads/missing -> {"missing": [{"name", "folder", "size", "note", "task"}], "sets": {...}}
    GET  /api/tasks/{id}        -> {"id", "name", "state", "bytes_done", "bytes_total", "speed", "error", "path"}
    POST /api/tasks/{id}/cancel -> the task, cancelled (its partial file kept for a resume)

Transfers run on worker threads (runtime/downloads.py); the only hosts contacted are the hub
endpoint and the links users submit. Bad input answers 400, an unknown task 404.
"""
from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from api.common import SERVICES, json_error, json_response, read_object, services
from api.webhooks import allowed
from runtime import hub_fetch
from runtime.downloads import SETS, Downloads, resolve_request
from runtime.weights import missing_official

DOWNLOADS = web.AppKey("downloads", Downloads)
MAX_FILES = 32


def downloads(app: web.Application) -> Downloads:
    """The app's download manager, made on first use for the configured weights folder."""
    if DOWNLOADS not in app:
        app[DOWNLOADS] = Downloads(app[SERVICES].config.weights_dir)
    return app[DOWNLOADS]


def link_allowed(url: str, allow: tuple[str, ...]) -> bool:
    """A pasted link's host is the hub's (where the token may go) or one the operator listed: a request must
    not make the server fetch arbitrary addresses (its LAN, cloud metadata) for whoever can reach the API."""
    if urlsplit(url).netloc in hub_fetch.hub_hosts():
        return True
    try:
        return allowed(URL(url), allow)
    except ValueError:  # yarl refuses what urlsplit let through: not a link we fetch
        return False


async def start(request: web.Request) -> web.Response:
    body = await read_object(request)
    given = [k for k in ("files", "set", "url") if k in body]
    if len(given) != 1:
        return json_error(400, 'give exactly one of "files" (official file names), "set" '
                               f'({" | ".join(SETS)}) or "url"')
    manager = downloads(request.app)
    try:
        if "url" in body:
            url = hub_fetch.normalise_url(body["url"])
            if not link_allowed(url, services(request).config.download_allow):
                return json_error(400, f"downloads from {URL(url).host} are not allowed: only the Hugging Face "
                                       "hub's links, and hosts the server was started with --download-allow")
            tasks = [manager.start_url(url)]
        else:
            files, set_name = body.get("files", []), body.get("set")
            if not isinstance(files, list) or not files and set_name is None or len(files) > MAX_FILES \
                    or not all(isinstance(f, str) for f in files):
                return json_error(400, f'"files" must be a list of 1 to {MAX_FILES} official file names')
            if set_name is not None and not isinstance(set_name, str):
                return json_error(400, '"set" must be a string')
            tasks = manager.start_official(resolve_request(files, set_name))
    except hub_fetch.DownloadError as exc:
        return json_error(400, str(exc))
    return json_response({"task_id": tasks[0].id, "tasks": [{"id": t.id, "name": t.name} for t in tasks]})


async def missing(request: web.Request) -> web.Response:
    weights_dir = services(request).config.weights_dir
    files = await asyncio.to_thread(missing_official, weights_dir)
    manager = downloads(request.app)
    out = []
    for o in files:
        task = manager.active(f"official:{o.folder}/{o.name}")
        out.append({"name": o.name, "folder": o.folder, "size": o.size, "note": o.note,
                    "task": task.id if task else None})
    return json_response({"missing": out, "sets": {k: list(v) for k, v in SETS.items()}})


def _task_or_404(request: web.Request, cancel: bool = False) -> web.Response:
    manager = downloads(request.app)
    task_id = request.match_info["task_id"]
    task = manager.cancel(task_id) if cancel else manager.get(task_id)
    if task is None:
        return json_error(404, f"no task {task_id!r} (finished tasks are kept for a while, then forgotten)",
                          "not_found")
    return json_response(task.snapshot())


async def task_status(request: web.Request) -> web.Response:
    return _task_or_404(request)


async def task_cancel(request: web.Request) -> web.Response:
    return _task_or_404(request, cancel=True)


async def _close(app: web.Application) -> None:
    if DOWNLOADS in app:
        await asyncio.to_thread(app[DOWNLOADS].close)


def install(app: web.Application) -> None:
    """Stop running downloads when the app shuts down (their partial files stay for a resume)."""
    app.on_shutdown.append(_close)


ROUTES = [
    ("POST", "/models/download", start),
    ("GET", "/downloads/missing", missing),  # not under /models/: GET /models/{folder} owns those
    ("GET", "/tasks/{task_id}", task_status),
    ("POST", "/tasks/{task_id}/cancel", task_cancel),
]
