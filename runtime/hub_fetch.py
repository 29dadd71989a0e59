"""One file from the Hugging Face hub (or any https link) into the weights folder, safely.

Network work is `huggingface_hub`'s (`get_hf_file_metadata` for the size and hash, `http_get` for a
resumable, retried transfer). Here: the hub endpoint (HF_ENDPOINT read at call time, so a test or a
mirror set after import is honoured), the access token (sent only to the hub), a disk-space check
before the first byte, the sha256 check against the hub's LFS hash, and the rename into place: bytes
go to `<weights>/.downloads/<name>.<id>.part` and only a verified file gets its final name.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers

PART_FOLDER = ".downloads"  # under the weights folder: same file system, so the final rename is atomic
KEEP_FREE = 256 * 2**20  # bytes a download must leave free on the disk (tests raise it to see a refusal)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BLOB = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/blob/(?P<rest>.+)$")


class DownloadError(Exception):
    """A download that cannot go on; the message says why, for the user (never holds the token)."""


class Cancelled(DownloadError):
    """The user cancelled; the partial file is kept, so the next try resumes."""


def endpoint() -> str:
    """The hub's base URL: HF_ENDPOINT (read now, not at import) or huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def is_hub(url: str) -> bool:
    """The link is the configured endpoint's (same scheme and host) or https://huggingface.co: only these
    receive the token, so a plain-http link to the hub's name never carries it in the clear."""
    parts, base = urlsplit(url), urlsplit(endpoint())
    return (parts.scheme, parts.netloc) in {(base.scheme, base.netloc), ("https", "huggingface.co")}


def hub_hosts() -> set[str]:
    """Hosts that may receive the access token: the configured endpoint and huggingface.co itself."""
    return {urlsplit(endpoint()).netloc, "huggingface.co"}


@dataclass
class Source:
    """Where a file comes from and what the server promised: size (bytes) and sha256 when known."""

    url: str
    name: str
    size: int | None = None
    sha256: str | None = None
    hub: bool = False
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # may hold the token: never shown

    @property
    def part_key(self) -> str:
        """Names the partial file: a different version of the same name never appends to it."""
        return (self.sha256 or hashlib.sha256(self.url.encode()).hexdigest())[:16]


def normalise_url(url: str) -> str:
    """An http(s) URL; a hub page link `.../blob/REV/PATH` becomes its file link `.../resolve/REV/PATH`.

    Raises DownloadError for any other scheme, a missing host or a URL without a file name."""
    if not isinstance(url, str) or len(url) > 2000:
        raise DownloadError("url must be a string of at most 2000 characters")
    try:  # urlsplit refuses some hosts ('[::1', NFKC tricks) and .port a bad port: all are the user's input
        parts = urlsplit(url.strip())
        parts.port
    except ValueError as exc:
        raise DownloadError(f"not a valid link ({exc}): {url[:200]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DownloadError(f"only http(s) links can be downloaded, not {url[:200]!r}")
    path = parts.path
    match = _BLOB.match(path)
    if match and parts.netloc in hub_hosts():
        path = f"/{match['repo']}/resolve/{match['rest']}"
    if not path.rsplit("/", 1)[-1]:
        raise DownloadError(f"the link names no file: {url[:200]!r}")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _metadata(url: str, headers: dict[str, str]) -> tuple[int | None, str | None, bool]:
    """(size, sha256, served by a hub) from a HEAD through huggingface_hub; DownloadError on refusal."""
    try:
        meta = get_hf_file_metadata(url, headers=headers, token=False)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise DownloadError(f"the hub refused access ({status}) to {url}: accept the model's licence on "
                                "its page and log in (`hf auth login`) or set HF_TOKEN") from None
        raise DownloadError(f"cannot download {url}: HTTP {status}") from None
    except OfflineModeIsEnabled:
        raise DownloadError("HF_HUB_OFFLINE is set: unset it to download") from None
    except Exception as exc:  # connection refused, DNS, timeout: say which link and why, in one line
        raise DownloadError(f"cannot reach {url}: {type(exc).__name__}") from None
    hub = meta.commit_hash is not None  # only the hub sends X-Repo-Commit; its LFS etag is the sha256
    sha = meta.etag if hub and meta.etag and _SHA256.match(meta.etag) else None
    return meta.size, sha, hub


def _headers(url: str) -> dict[str, str]:
    # The token (HF_TOKEN or the `hf auth login` file) only goes to the hub, never to a pasted host.
    token = None if is_hub(url) else False
    return build_hf_headers(token=token)


def hub_source(repo: str, path: str, revision: str = "main") -> Source:
    """An official file on the hub: its URL under the current endpoint, size and sha256."""
    url = hf_hub_url(repo, path, revision=revision, endpoint=endpoint())
    return url_source(url)


def url_source(url: str) -> Source:
    """Any link (normalised by `normalise_url`) with what its server says about it."""
    url = normalise_url(url)
    headers = _headers(url)
    size, sha, hub = _metadata(url, headers)
    return Source(url, Path(urlsplit(url).path).name, size, sha, hub, headers)


def check_space(folder: Path, needed: int, keep_free: int = KEEP_FREE) -> None:
    """DownloadError when writing `needed` bytes into `folder` would leave less than `keep_free` free."""
    free = shutil.disk_usage(folder).free
    if free - needed < keep_free:
        raise DownloadError(f"not enough disk space in {folder}: the download needs {_size(needed)}, "
                            f"{_size(free)} is free and {_size(keep_free)} must stay free")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def part_path(weights_dir: Path, source: Source) -> Path:
    return Path(weights_dir) / PART_FOLDER / f"{source.name}.{source.part_key}.part"


Progress = Callable[[int, int | None], None]  # (bytes on disk, total or None); may raise Cancelled


def transfer(source: Source, part: Path, *, keep_free: int = KEEP_FREE, progress: Progress | None = None,
             cancel: threading.Event | None = None, terminal: bool = False) -> Path:
    """Bytes of `source` into `part` (resumed from what it holds), checked; returns `part`.

    Raises DownloadError (no space, HTTP failure, wrong size or sha256: the partial file is then
    removed, as it can never become right) or Cancelled (partial file kept for a resume)."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if source.size is not None and have > source.size:  # longer than the file: not a prefix of it
        part.unlink()
        have = 0
    check_space(part.parent, (source.size or 0) - have, keep_free)
    meter = _meter(progress, cancel, terminal, source.name)
    try:
        with part.open("ab") as out:
            http_get(source.url, out, resume_size=have, headers=dict(source.headers),
                     expected_size=source.size, displayed_filename=source.name, tqdm_class=meter)
    except Cancelled:
        raise
    except OSError as exc:  # wrong size after the transfer (huggingface_hub's consistency check), disk full
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {source.name} failed: {str(exc).splitlines()[0]}") from None
    except Exception as exc:
        raise DownloadError(f"download of {source.name} failed: {type(exc).__name__}; "
                            "try again to resume") from None
    if source.sha256 is not None:
        got = sha256_of(part, cancel)
        if got != source.sha256:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{source.name}: sha256 {got} does not match the hub's {source.sha256}; "
                                "the file was removed")
    return part


def sha256_of(path: Path, cancel: threading.Event | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            digest.update(chunk)
    return digest.hexdigest()


def place(part: Path, dest: Path) -> Path:
    """Atomic rename of a checked file to its final name (never a half file under that name)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, dest)
    return dest


def _meter(progress: Progress | None, cancel: threading.Event | None, terminal: bool, name: str):
    """A progress-bar class for huggingface_hub's `http_get`: feeds `progress`, checks `cancel`,
    and draws a terminal bar (tqdm) when `terminal`."""
    from tqdm.auto import tqdm

    class Meter:
        def __init__(self, *, total=None, initial=0, **_kw):
            self.done, self.total = initial, total
            self.bar = tqdm(total=total, initial=initial, desc=name, unit="B", unit_scale=True,
                            unit_divisor=1024) if terminal else None
            self._report()

        def update(self, n: int) -> None:
            self._check()  # before counting: huggingface_hub writes the chunk after this call
            self.done += n
            if self.bar is not None:
                self.bar.update(n)
            self._report()

        def _check(self) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")

        def _report(self) -> None:
            self._check()
            if progress is not None:
                progress(self.done, self.total)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            if self.bar is not None:
                self.bar.close()
            return False

    return Meter


__all__ = ["Cancelled", "DownloadError", "Source", "check_space", "endpoint", "hub_source",
           "normalise_url", "part_path", "place", "transfer", "url_source"]
