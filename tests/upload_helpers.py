"""Helpers for the upload and /view tests: multipart bodies, real small images, hand-made PNG bombs,
and files that a browser would run as a page if we served them as one."""
from __future__ import annotations

import io
import struct
import uuid
import zlib

from PIL import Image

# Script that would drive our API if it ran on our origin: it unpauses the queue and leaves a marker.
ATTACK_JS = ("fetch('/queue',{method:'POST',headers:{'Content-Type':'application/json'},"
             "body:'{\"pause\": false}'});localStorage.setItem('pwned',location.href);"
             "document.title='pwned'")
PAGES = {
    ".html": f"<!doctype html><script>{ATTACK_JS}</script>",
    ".htm": f"<script>{ATTACK_JS}</script>",
    ".svg": f'<svg xmlns="http://www.w3.org/2000/svg"><script>{ATTACK_JS}</script></svg>',
    ".xml": f'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>'
            f'{ATTACK_JS}</script></html>',
    ".xhtml": f'<html xmlns="http://www.w3.org/1999/xhtml"><script>{ATTACK_JS}</script></html>',
    ".xsl": f'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>'
            f'{ATTACK_JS}</script></html>',
    ".png": f"<!doctype html><script>{ATTACK_JS}</script>",  # a page named like an image
    "": f"<!doctype html><script>{ATTACK_JS}</script>",      # no extension at all
}


def png_bytes(size: tuple[int, int] = (8, 6), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (10, 200, 30) if mode == "RGB" else 0).save(buf, format=fmt)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of width × height, all black: a few KB declaring a huge canvas."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte 0, then the packed row
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))


def multipart(data: bytes, name: bytes | str = "a.png", ctype: str = "image/png",
              **fields: str | bytes) -> tuple[bytes, dict]:
    """A multipart/form-data body with an ``image`` file part (name sent as raw bytes) + fields."""
    boundary = uuid.uuid4().hex
    raw_name = name.encode() if isinstance(name, str) else name
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
             + (v.encode() if isinstance(v, str) else v) + b"\r\n" for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="'.encode()
                 + raw_name + f'"\r\nContent-Type: {ctype}\r\n\r\n'.encode() + data + b"\r\n")
    return (b"".join(parts) + f"--{boundary}--\r\n".encode(),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"})
