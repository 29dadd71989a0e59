"""Middlewares: JSON errors, token auth, same-origin and Host checks, security headers."""
from __future__ import annotations

import errno
import hmac
import logging
import re
import secrets
import sqlite3
import time
import weakref
from urllib.parse import urlsplit

from aiohttp import web

from api.common import SERVICES, BadRequest, json_error
from api.redact import redact_paths_middleware
from config import is_loopback_host

log = logging.getLogger("cascade.server")
COOKIE_PREFIX = "cascade_session_"
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT, errno.EACCES})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_IDLE_S = 24 * 3600   # a session unused this long must open the editor with ?token= again
MAX_SESSIONS = 256           # opening ?token= repeatedly cannot grow memory without bound
# Every reply: no MIME sniffing (a stored file is never run as a page), no framing by other
# origins, no Referer (an editor opened with ?token= must not pass it on). API and /view replies
# also get a CSP that forbids everything, so a reply rendered as a document can run nothing;
# api/static.py sets the editor's own policy on its pages.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
                    "Referrer-Policy": "no-referrer"}
API_CSP = "default-src 'none'; frame-ancestors 'self'; sandbox"
_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s\"']*")


class _RedactTokenInUrls(logging.Filter):
    """aiohttp's access and server logs print request lines; never with a ``?token=`` value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _TOKEN_IN_URL.sub(r"\1***", message), None
        return True


for _name in ("aiohttp.access", "aiohttp.server", "aiohttp.web"):
    logging.getLogger(_name).addFilter(_RedactTokenInUrls())


def _set_headers(response: web.StreamResponse) -> None:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    response.headers.setdefault("Content-Security-Policy", API_CSP)


@web.middleware
async def headers_middleware(request: web.Request, handler):
    """Outermost: the security headers on every reply, errors and refusals included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and anything else aiohttp turns into a reply
        _set_headers(exc)
        raise
    if not response.prepared:  # a WebSocket's 101 is already sent; nothing to render there
        _set_headers(response)
    return response


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
    except (sqlite3.OperationalError, OSError) as exc:
        if not isinstance(exc, sqlite3.OperationalError) and exc.errno not in STORAGE_ERRNOS:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return json_error(500, "internal server error", "internal_error")
        # The machine's fault, not the request's: say so, and that a retry may work.
        log.error("storage failure in %s %s: %s", request.method, request.path, exc)
        return json_error(503, f"the server's storage refused a write ({exc}); free disk "
                               "space or fix the data folder's permissions, then retry",
                          "storage_unavailable")
    except Exception:  # a bug: log it, answer JSON, keep serving
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal server error", "internal_error")


class Sessions:
    """Random session ids issued to a browser that proved the token once; held in memory only,
    so they end with the server and never reveal (or derive from) the token itself."""

    def __init__(self) -> None:
        self._last_used: dict[str, float] = {}

    def new(self) -> str:
        if len(self._last_used) >= MAX_SESSIONS:
            oldest = min(self._last_used, key=self._last_used.__getitem__)
            del self._last_used[oldest]
        sid = secrets.token_urlsafe(32)
        self._last_used[sid] = time.monotonic()
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        now = time.monotonic()
        for known in list(self._last_used):  # compare with each: no timing hint about which exist
            if hmac.compare_digest(known.encode(), sid.encode(errors="replace")):
                if now - self._last_used[known] > SESSION_IDLE_S:
                    del self._last_used[known]
                    return False
                self._last_used[known] = now
                return True
        return False


_SESSIONS: "weakref.WeakKeyDictionary[web.Application, Sessions]" = weakref.WeakKeyDictionary()


def sessions_of(app: web.Application) -> Sessions:
    """The app's session table (one per app, so test servers in one process never share one)."""
    table = _SESSIONS.get(app)
    if table is None:
        table = _SESSIONS[app] = Sessions()
    return table


def cookie_name(request: web.Request) -> str:
    """Browsers send a host's cookies to every port: one name per port keeps two servers on one
    host from overwriting each other's session."""
    _, port = _host_port(request.host or "", 443 if request.secure else 80)
    return f"{COOKIE_PREFIX}{port}"


def _credentials(request: web.Request) -> tuple[str | None, bool]:
    """(presented token, whether it came from the query string); a Bearer header wins."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if "token" in request.query:
        return request.query["token"], True
    return None, False


@web.middleware
async def token_middleware(request: web.Request, handler):
    """With --token set, every route needs it: Bearer header, ?token= or the editor's session
    cookie. The cookie holds a random session id, never the token."""
    expected = request.app[SERVICES].config.token
    if not expected:
        return await handler(request)
    given, from_query = _credentials(request)
    table = sessions_of(request.app)
    name = cookie_name(request)
    if given is not None:
        ok = hmac.compare_digest(given.encode(errors="replace"), expected.encode())
    else:
        ok = table.valid(request.cookies.get(name))
    if not ok:
        return json_error(401, "missing or wrong token (use Authorization: Bearer, ?token= or "
                               "open the editor with ?token=)", "unauthorized")
    response = await handler(request)
    if from_query and request.method == "GET" and isinstance(response, web.StreamResponse) \
            and not response.prepared and not table.valid(request.cookies.get(name)):
        # The browser editor is opened once with ?token=; its later fetches carry the session.
        response.set_cookie(name, table.new(), httponly=True, samesite="Strict", path="/",
                            secure=request.secure)
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


MIDDLEWARES = [headers_middleware, redact_paths_middleware, errors_middleware, host_middleware,
               token_middleware, origin_middleware]
