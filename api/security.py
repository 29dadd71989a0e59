"""Middlewares: JSON errors, token auth, same-origin and Host checks."""
from __future__ import annotations

import hmac
import logging
from urllib.parse import urlsplit

from aiohttp import web

from api.common import SERVICES, BadRequest, json_error
from config import is_loopback_host

log = logging.getLogger("cascade.server")
COOKIE = "cascade_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def errors_middleware(request: web.Request, handler):
    """Every failure becomes a JSON body; nothing escapes as an HTML 500 page."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return json_error(400, str(exc))
    except web.HTTPRequestEntityTooLarge as exc:
        return json_error(413, exc.text or "request body too large", "payload_too_large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_error(exc.status, exc.reason, "http_error")
    except Exception:  # a bug: log it, answer JSON, keep serving
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal server error", "internal_error")


def _token_of(request: web.Request) -> tuple[str | None, bool]:
    """(presented token, whether it came from the query string)."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if "token" in request.query:
        return request.query["token"], True
    return request.cookies.get(COOKIE), False


@web.middleware
async def token_middleware(request: web.Request, handler):
    """With --token set, every route needs it: Bearer header, ?token= or the editor's cookie."""
    expected = request.app[SERVICES].config.token
    if not expected:
        return await handler(request)
    given, from_query = _token_of(request)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        return json_error(401, "missing or wrong token (use Authorization: Bearer, ?token= or "
                               "open the editor with ?token=)", "unauthorized")
    response = await handler(request)
    if from_query and request.method == "GET" and isinstance(response, web.StreamResponse) \
            and not response.prepared:
        # The browser editor is opened once with ?token=; its later fetches carry the cookie.
        response.set_cookie(COOKIE, expected, httponly=True, samesite="Strict", path="/")
    return response


def _host_port(value: str, default_port: int | None) -> tuple[str, int | None]:
    parts = urlsplit(value if "//" in value else "//" + value)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port or default_port


@web.middleware
async def origin_middleware(request: web.Request, handler):
    """Refuse cross-site state changes and WebSocket upgrades (CSRF against localhost)."""
    upgrading = request.headers.get("Upgrade", "").lower() == "websocket"
    if request.method not in SAFE_METHODS or upgrading:
        origin = request.headers.get("Origin")
        if origin is not None:
            if origin.strip().lower() == "null":
                return json_error(403, "cross-origin request refused (Origin: null)", "forbidden")
            scheme = urlsplit(origin).scheme
            default = 443 if scheme == "https" else 80
            o_host, o_port = _host_port(origin, default)
            h_host, h_port = _host_port(request.host or "", default)
            if (o_host, o_port) != (h_host, h_port):
                return json_error(403, f"cross-origin request refused ({origin})", "forbidden")
        if request.headers.get("Sec-Fetch-Site", "") == "cross-site":
            return json_error(403, "cross-site request refused", "forbidden")
    return await handler(request)


@web.middleware
async def host_middleware(request: web.Request, handler):
    """Without a token, answer only requests addressed to a loopback name (DNS rebinding)."""
    config = request.app[SERVICES].config
    if config.token:
        return await handler(request)
    host, _ = _host_port(request.host or "", None)
    if host and not is_loopback_host(host) and host != config.host.lower():
        return json_error(403, f"Host {host!r} is not this server's loopback address", "forbidden")
    return await handler(request)


MIDDLEWARES = [errors_middleware, host_middleware, token_middleware, origin_middleware]
