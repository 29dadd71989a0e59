"""Per-prompt webhooks (beyond ComfyUI): ``extra_data.webhook`` is POSTed the job's record.

When a job ends (success, error, interrupt, or removal from the queue before it ran) the URL gets JSON ``{"prompt_id", "status"
(ComfyUI's word: completed/failed/cancelled), "status_str", "outputs", "messages"}`` with
``X-Cascade-Timestamp: <unix s>`` and ``X-Cascade-Signature: sha256=<hex>``, the HMAC-SHA256
of ``"<timestamp>.<body>"`` under the server secret (``<data>/webhook_secret``, made on first
use, mode 0600). A receiver checks the HMAC and the timestamp's age.

Only hosts the operator lists with ``--webhook-allow HOST[:PORT]`` may be named, so a prompt
cannot make the server call arbitrary addresses: another host is a 400 at submission, and the
list is checked again before each delivery (the job may predate a restart with other flags).
Redirects are never followed. Delivery runs on the event loop, never in the worker thread:
up to ATTEMPTS tries, the delay doubling from ``webhook_backoff_s``, each try at most
ATTEMPT_TIMEOUT_S; a 3xx or a 4xx other than 408/429 is final.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path

import aiohttp
from yarl import URL

from api import strict_json
from api.common import BadRequest, call_on_loop

log = logging.getLogger("cascade.webhooks")
SECRET_FILE = "webhook_secret"
ATTEMPTS = 4
ATTEMPT_TIMEOUT_S = 10.0
MAX_URL = 2048
RETRYABLE_4XX = frozenset({408, 429})
OUTCOMES = {"execution_success": "completed", "execution_error": "failed",
            "execution_interrupted": "cancelled"}


def allowed(url: URL, allow: tuple[str, ...]) -> bool:
    """True when `url`'s host (any port) or host:port is listed in `allow`."""
    host = (url.host or "").lower().strip("[]")
    port = url.explicit_port or url.port
    return any(entry.strip("[]") == host or entry == f"{host}:{port}"
               or entry == f"[{host}]:{port}" for entry in allow)


def check_webhook(extra_data: dict, allow: tuple[str, ...]) -> None:
    """BadRequest unless ``extra_data.webhook`` is absent or an http(s) URL on a listed host."""
    raw = extra_data.get("webhook")
    if raw is None:
        return
    if not isinstance(raw, str) or not raw or len(raw) > MAX_URL:
        raise BadRequest(f"'extra_data.webhook' must be an http(s) URL of at most {MAX_URL} "
                         "characters")
    try:
        url = URL(raw)
    except ValueError:
        raise BadRequest("'extra_data.webhook' is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host or url.user or url.password:
        raise BadRequest("'extra_data.webhook' must be an http:// or https:// URL with a host "
                         "and no credentials")
    if not allowed(url, allow):
        listed = ", ".join(allow) if allow else "none"
        raise BadRequest(f"'extra_data.webhook' host {url.host}:{url.port} is not allowed; the "
                         f"server operator lists webhook hosts with --webhook-allow HOST[:PORT] "
                         f"(listed: {listed})")


def load_secret(data_dir: Path) -> bytes:
    """The server's signing secret, created (0600, never overwritten) on first use.

    The secret is written to a private temporary file and linked into place, so the file is
    never seen empty or half-written: two deliveries starting together on first use, or a crash
    mid-write, cannot sign with an empty key (which anyone could forge). An empty file (left by
    an older version's crash) holds no secret and is replaced; a secret readable by others is
    made 0600 again.
    """
    path = data_dir / SECRET_FILE
    while True:
        try:
            secret = path.read_bytes().strip()
        except FileNotFoundError:
            secret = b""
        if secret:
            if path.stat().st_mode & 0o077:
                log.warning("%s was readable by others; made 0600", path)
                os.chmod(path, 0o600)
            return secret
        _create_secret(path, replace=path.exists())


def _create_secret(path: Path, replace: bool) -> None:
    """Write a fresh secret beside `path` and move it into place (`replace`: over an empty file)."""
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if another writer got there first: theirs stands
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def record(prompt_id: str, entry: dict) -> dict:
    """The job's record as sent: ComfyUI's status word, outputs and history messages."""
    messages = entry["status"]["messages"]
    last = messages[-1][0] if messages else ""
    return {"prompt_id": prompt_id, "status": OUTCOMES.get(last, "failed"),
            "status_str": entry["status"]["status_str"], "outputs": entry["outputs"],
            "messages": messages}


class Webhooks:
    """Delivers webhooks from the server's loop; ``job_ended`` may be called from any thread."""

    def __init__(self, data_dir: Path, allow: tuple[str, ...], backoff_s: float = 1.0):
        self.data_dir, self.allow, self.backoff_s = data_dir, allow, backoff_s
        self.loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self.delivered = 0  # observability / tests

    def job_ended(self, prompt_id: str, state: str, entry: dict | None) -> None:
        """The store's end hook: schedule delivery for a finished job that asked for one."""
        if state not in ("done", "cancelled") or entry is None or not self.allow:
            return
        extra = entry["prompt"][3] if len(entry.get("prompt", ())) > 3 else {}
        url = extra.get("webhook") if isinstance(extra, dict) else None
        if isinstance(url, str):
            call_on_loop(self.loop, self._start, url, record(prompt_id, entry))

    def _start(self, url: str, payload: dict) -> None:
        task = asyncio.ensure_future(self.deliver(url, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, url: str, payload: dict) -> bool:
        """POST `payload` to `url` with retries; True when a 2xx came back."""
        try:
            target = URL(url)
        except ValueError:
            return False
        if not allowed(target, self.allow):
            log.warning("webhook %s not sent: its host is no longer in --webhook-allow", url)
            return False
        body = strict_json.dumps(payload, default=str).encode()  # a receiver's JSON.parse must accept it
        secret = await asyncio.to_thread(load_secret, self.data_dir)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_S))
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Cascade-Timestamp": stamp,
                       "X-Cascade-Signature": sign(secret, stamp, body)}
            try:
                async with self._session.post(target, data=body, headers=headers,
                                              allow_redirects=False) as resp:
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.info("webhook %s try %d failed: %s", url, attempt + 1, exc)
                continue
            if 200 <= status < 300:
                self.delivered += 1
                return True
            if status < 500 and status not in RETRYABLE_4XX:
                log.warning("webhook %s answered %d; not retried", url, status)
                return False
            log.info("webhook %s try %d answered %d", url, attempt + 1, status)
        log.warning("webhook %s gave up after %d tries", url, ATTEMPTS)
        return False

    async def close(self) -> None:
        """Stop pending deliveries and close the client (server shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
