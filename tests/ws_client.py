"""A tiny synchronous WebSocket client (stdlib only), shaped like ``websocket-client``.

``ws = WebSocket(); ws.connect(url); ws.recv()`` returns ``str`` for text frames and ``bytes``
for binary frames, which is exactly how ComfyUI's example scripts use ``websocket-client``.
"""
from __future__ import annotations

import base64
import os
import socket
import struct
from urllib.parse import urlsplit


class WebSocketError(Exception):
    pass


class WebSocket:
    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.status: int | None = None

    def connect(self, url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> None:
        """Open the connection; raises WebSocketError with the HTTP status if refused."""
        parts = urlsplit(url)
        port = parts.port or 80
        self.sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.hostname}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise WebSocketError("connection closed during handshake")
            head += chunk
        self.status = int(head.split(b" ", 2)[1])
        if self.status != 101:
            self.sock.close()
            raise WebSocketError(f"handshake refused with HTTP {self.status}")

    def settimeout(self, timeout: float | None) -> None:
        assert self.sock is not None
        self.sock.settimeout(timeout)

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise WebSocketError("connection closed")
            buf += chunk
        return buf

    def _frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = self._read(2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._read(8))[0]
        mask = self._read(4) if b1 & 0x80 else None
        data = self._read(length)
        if mask:
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
        return bool(b0 & 0x80), b0 & 0x0F, data

    def recv(self) -> str | bytes:
        """The next text (str) or binary (bytes) message; answers pings on the way."""
        opcode, payload = None, b""
        while True:
            fin, op, data = self._frame()
            if op == 0x9:
                self._send(0xA, data)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                raise WebSocketError("closed by server")
            if op != 0x0:
                opcode = op
            payload += data
            if fin:
                return payload.decode() if opcode == 0x1 else payload

    def _send(self, opcode: int, data: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(data)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(header + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(data)))

    def send(self, text: str) -> None:
        self._send(0x1, text.encode())

    def close(self) -> None:
        if self.sock is not None:
            try:
                self._send(0x8, struct.pack(">H", 1000))
            except OSError:
                pass
            self.sock.close()
            self.sock = None
