"""sha256 of weights files: computed once, cached per (path, size, mtime), persisted under the data folder.

Hashing a 7 GB file takes tens of seconds, so it never happens at start-up or inside a listing:
- `HashStore.get(path)` answers only from the cache (None when not known yet);
- `HashStore.request(paths)` queues files for one background daemon thread, which hashes them one at a
  time and saves the store (`<data_dir>/weights_sha256.json`) after each, so a restart does not rehash;
- `HashStore.compute(path)` hashes now (the caller's thread), for scripts and tests.
A file replaced under the same name (other size or mtime) misses the cache and is hashed again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from pathlib import Path

from runtime.stamps import STAMP_FIELDS, stamp

log = logging.getLogger("cascade.weights")
STORE_NAME = "weights_sha256.json"
_CHUNK = 8 << 20


def _stamp(path: Path) -> tuple | None:
    """(resolved path, file stamp): see runtime/stamps.py for why not only size and mtime."""
    try:
        path = Path(path).resolve()
        return (str(path), *stamp(path))
    except (OSError, RuntimeError):
        return None


class HashStore:
    """The sha256 cache of one data folder (or in memory only when `data_dir` is None). Thread-safe."""

    def __init__(self, data_dir: Path | None) -> None:
        self.file = Path(data_dir) / STORE_NAME if data_dir is not None else None
        self.files_read = 0  # how many files were hashed (read in full) by this store: a cache measure
        self._lock = threading.RLock()  # request() asks get() while holding it
        self._entries: dict[str, list] = self._load()
        self._queue: queue.Queue[Path] = queue.Queue()
        self._queued: set[str] = set()
        self._thread: threading.Thread | None = None

    def _load(self) -> dict[str, list]:
        try:
            raw = json.loads(self.file.read_text()) if self.file is not None and self.file.is_file() else {}
        except (OSError, ValueError):
            return {}  # a damaged cache only costs a rehash
        # [*file stamp, sha256]; entries of another shape (an older cache) are simply hashed again
        width = len(STAMP_FIELDS) + 1
        return {k: v for k, v in raw.items() if isinstance(v, list) and len(v) == width} if isinstance(raw, dict) else {}

    def _save(self) -> None:
        if self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.file.with_suffix(".tmp")
            with self._lock:
                tmp.write_text(json.dumps(self._entries))
            os.replace(tmp, self.file)
        except OSError as e:  # a read-only data folder: hashes stay in memory for this run
            log.debug("cannot save %s: %s", self.file, e)

    def get(self, path: Path) -> str | None:
        """The cached sha256 (hex) of `path` when its file stamp still matches, else None. Never reads it."""
        stamp = _stamp(path)
        if stamp is None:
            return None
        with self._lock:
            hit = self._entries.get(stamp[0])
        return hit[-1] if hit and tuple(hit[:-1]) == stamp[1:] else None

    def compute(self, path: Path) -> str | None:
        """sha256 of `path`, from the cache or by reading it now; None when it cannot be read."""
        cached = self.get(path)
        if cached is not None:
            return cached
        stamp = _stamp(path)
        if stamp is None:
            return None
        digest = hashlib.sha256()
        try:
            with open(stamp[0], "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
        except OSError:
            return None
        if _stamp(path) != stamp:
            return None  # changed while being read (a download still writing): hashed again when asked next
        with self._lock:
            self.files_read += 1
            self._entries[stamp[0]] = [*stamp[1:], digest.hexdigest()]
        self._save()
        return digest.hexdigest()

    def request(self, paths) -> None:
        """Queue files whose hash is unknown for the background thread (started on first use)."""
        with self._lock:
            for p in paths:
                key = str(p)
                if key not in self._queued and self.get(p) is None:
                    self._queued.add(key)
                    self._queue.put(Path(p))
            if self._queued and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._work, name="weights-sha256", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            try:
                path = self._queue.get(timeout=5)
            except queue.Empty:
                return  # idle: the next request starts a new thread
            try:
                self.compute(path)
            finally:
                with self._lock:
                    self._queued.discard(str(path))

    def pending(self) -> int:
        """Files queued or being hashed."""
        with self._lock:
            return len(self._queued)


_STORES: dict[str, HashStore] = {}
_STORES_LOCK = threading.Lock()


def store_for(data_dir: Path | None) -> HashStore:
    """The one HashStore of a data folder in this process (so the API and the report share one cache)."""
    key = str(Path(data_dir).resolve()) if data_dir is not None else ""
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = HashStore(data_dir)
        return _STORES[key]
