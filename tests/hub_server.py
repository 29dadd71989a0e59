"""A local HTTP server laid out like the Hugging Face hub, for offline download tests.

    with local_hub({"org/repo": {"a.safetensors": b"..."}}) as hub:   # hub.url -> HF_ENDPOINT
        hub.drop_once["a.safetensors"] = 10     # close the connection after 10 body bytes, once
        hub.etags["a.safetensors"] = "0" * 64   # advertise a wrong sha256

GET/HEAD /{repo}/resolve/{rev}/{path} answer with the headers huggingface_hub reads: X-Repo-Commit,
ETag and X-Linked-Etag (the file's sha256, as for LFS files), X-Linked-Size, Content-Length, and
honour `Range: bytes=N-` with 206. /plain/{path} serves the same files as a non-hub host would (no
hub headers). Every request is recorded in `hub.requests` as (method, path, range header).
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

COMMIT = "a" * 40


class Hub:
    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        self.repos = repos
        self.etags: dict[str, str] = {}
        self.drop_once: dict[str, int] = {}
        self.chunk = 1024  # bytes a write
        self.delay_s = 0.0  # pause between writes (to keep a download running for a while)
        self.requests: list[tuple[str, str, str | None]] = []
        self.auth: list[tuple[str, str | None]] = []  # (path, Authorization header) per request
        self.url = ""

    def find(self, path: str) -> tuple[str, bytes] | None:
        parts = path.split("?")[0].strip("/").split("/")
        if parts[0] == "plain":
            name = "/".join(parts[1:])
            return next(((name, files[name]) for files in self.repos.values() if name in files), None)
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        repo, name = "/".join(parts[:2]), "/".join(parts[4:])
        data = self.repos.get(repo, {}).get(name)
        return None if data is None else (name, data)


def _handler(hub: Hub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet tests
            pass

        def do_HEAD(self):
            self._serve(body=False)

        def do_GET(self):
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            hub.requests.append((self.command, self.path, self.headers.get("Range")))
            hub.auth.append((self.path, self.headers.get("Authorization")))
            found = hub.find(self.path)
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            name, data = found
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and body:
                start = int(rng[6:].split("-")[0])
            self.send_response(206 if start else 200)
            if not self.path.startswith("/plain/"):
                etag = hub.etags.get(name, hashlib.sha256(data).hexdigest())
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if not body:
                return
            drop = hub.drop_once.pop(name, None)
            payload = data[start:] if drop is None else data[start:start + drop]
            for i in range(0, len(payload), hub.chunk):
                self.wfile.write(payload[i:i + hub.chunk])
                if hub.delay_s:
                    time.sleep(hub.delay_s)
            if drop is not None:  # the body is cut short: the client sees the connection drop
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)

    return Handler


@contextlib.contextmanager
def local_hub(repos: dict[str, dict[str, bytes]]) -> Iterator[Hub]:
    """Serve `repos` ({repo id: {path in repo: bytes}}) on 127.0.0.1:<ephemeral>."""
    hub = Hub(repos)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()


def allow_local_hub(monkeypatch, hub: Hub) -> None:
    """Point huggingface_hub at `hub` for one test: HF_ENDPOINT, no token, and offline mode off
    (conftest turns it on for the whole suite; it is read once, at import, into this constant)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
