"""Open the SQLite database file, moving a damaged one aside instead of failing to start.

A corrupt or truncated file, or a folder where the file should be, is renamed to
``<name>.damaged-YYYYmmdd-HHMMSS`` (with its ``-wal``/``-shm`` companions) and a fresh database
is started; one warning line names both paths. Nothing is ever deleted: the old queue and
history stay available for inspection or recovery by hand.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("cascade.store")
# Error names that mean "the bytes are not a usable database" (as opposed to busy, locked or
# permission problems, where moving the file aside would be wrong).
DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


class DamagedDatabase(Exception):
    pass


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """A connection (autocommit, WAL) to `path` with `schema` applied; see the module doc."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _connect(path, schema)
    except DamagedDatabase as exc:
        moved = move_aside(path)
        log.warning("database %s is unusable (%s); moved it to %s and started an empty one",
                    path, exc, moved)
        return _connect(path, schema)


def _connect(path: Path, schema: str) -> sqlite3.Connection:
    if path.is_dir():
        raise DamagedDatabase("a folder is where the database file should be")
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # quick_check reads every page once: a truncated file shows up here, not mid-job.
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise DamagedDatabase(f"integrity check: {verdict}")
        db.executescript(schema)
    except sqlite3.DatabaseError as exc:
        db.close()
        if getattr(exc, "sqlite_errorname", "") in DAMAGED:
            raise DamagedDatabase(str(exc)) from exc
        raise
    except DamagedDatabase:
        db.close()
        raise
    return db


def move_aside(path: Path) -> Path:
    """Rename `path` (and its WAL/SHM files) to a free timestamped name; returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target
