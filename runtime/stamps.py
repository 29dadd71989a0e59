"""What identifies a file's contents without reading them, for every cache keyed by a file on disk.

(size, mtime, ctime, inode): mtime alone is not enough, because `cp -p`, `rsync -t` or a tool restoring mtimes
replaces a file with one of the same size and mtime; the change time (ctime) cannot be set from user space, and a
file moved over another has a new inode. A false "changed" only costs a re-read; a false "same" serves an old
model, description or result.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Generic, TypeVar

Stamp = tuple[int, int, int, int]
STAMP_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")
T = TypeVar("T")


def stamp(path: Path) -> Stamp:
    """(size, mtime ns, ctime ns, inode) of `path` (links followed). Raises OSError when it cannot be read."""
    st = Path(path).stat()
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StampCache(Generic[T]):
    """One value per resolved path, recomputed when the file's stamp changes. Thread-safe; one entry per path,
    so it never outgrows the folders it describes."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Stamp, T]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, compute: Callable[[], T]) -> T:
        """The cached value for `path`, else `compute()` stored under its current stamp. OSError from stat
        propagates (the caller words it)."""
        key = str(Path(path).resolve())
        now = stamp(Path(key))
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] == now:
            return hit[1]
        value = compute()
        with self._lock:
            self._entries[key] = (now, value)
        return value
