"""Replies to remote clients never reveal absolute paths on the server.

Paths reach replies from many places (an exception's text in a node error, a traceback in
``/history``, ``argv`` in ``/system_stats``), so instead of auditing each, JSON and text replies to a
peer that is not this machine have every known root (the configured folders, the app's install
folder, Python's prefixes, the home and temp folders) replaced by a short label such as
``<weights>``. Loopback peers (the editor on this machine) see the real paths, which help them.
"""
from __future__ import annotations

import ipaddress
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from config import PROJECT_ROOT, Config

TEXT_TYPES = ("application/json", "text/plain")


def is_remote_peer(request: web.Request) -> bool:
    """True unless the TCP peer is a loopback address (a Unix socket counts as local)."""
    peer = request.remote
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return True
    mapped = getattr(address, "ipv4_mapped", None)
    return not (mapped or address).is_loopback


def path_roots(config: Config) -> list[tuple[str, str]]:
    """(absolute root, label) pairs, longest first so a folder inside another gets its own label."""
    named = [(config.weights_dir, "<weights>"), (config.output_dir, "<output>"),
             (config.input_dir, "<input>"), (config.temp_dir, "<temp>"),
             (config.data_dir, "<data>"), (config.web_dir, "<web>"), (PROJECT_ROOT, "<app>"),
             (Path(sys.prefix), "<python>"), (Path(sys.exec_prefix), "<python>"),
             (Path(sys.base_prefix), "<python>"), (Path(tempfile.gettempdir()), "<tmp>")]
    try:
        named.append((Path.home(), "~"))
    except (RuntimeError, KeyError):  # no HOME and no passwd entry (some containers)
        pass
    roots: dict[str, str] = {}
    for path, label in named:
        for form in {str(path), str(path.resolve())}:
            if len(form) > 1:  # never "/" itself
                roots.setdefault(form.rstrip("/\\"), label)
    return sorted(roots.items(), key=lambda item: -len(item[0]))


REDACTOR = web.AppKey("redactor", object)  # built once per app by server.create_app


def redactor(config: Config):
    """A function str → str replacing each root (as a whole path component) by its label."""
    roots = path_roots(config)
    pattern = re.compile("|".join(f"(?:{re.escape(root)})(?=[/\\\\\"'\\s:,)]|$)"
                                  for root, _ in roots))
    labels = dict(roots)
    return lambda text: pattern.sub(lambda m: labels[m.group(0)], text)


def scrub_tree(value: Any, scrub) -> Any:
    """A copy of a JSON-like tree with `scrub` applied to every string, keys included."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, (list, tuple)):
        return [scrub_tree(v, scrub) for v in value]
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_tree(v, scrub)
                for k, v in value.items()}
    return value


@web.middleware
async def redact_paths_middleware(request: web.Request, handler):
    """Scrub absolute paths from JSON and text replies to non-loopback peers (WebSocket events
    to such peers are scrubbed by the hub, api/ws.py)."""
    response = await handler(request)
    if not is_remote_peer(request) or not isinstance(response, web.Response) \
            or response.prepared or response.content_type not in TEXT_TYPES:
        return response
    raw = response.body
    if not isinstance(raw, (bytes, bytearray)):
        return response
    scrub = request.app[REDACTOR]
    if response.content_type == "application/json":
        try:
            response.body = json.dumps(scrub_tree(json.loads(raw), scrub)).encode()
        except ValueError:
            response.body = scrub(raw.decode("utf-8", "replace")).encode()
    else:
        response.body = scrub(raw.decode(response.charset or "utf-8", "replace")).encode()
    return response
