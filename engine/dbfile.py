"""Open the SQLite database file, moving a damaged one aside instead of failing to start.

A corrupt or truncated file, a database whose tables are not the ones this version writes
(another program's file, an incompatible version), or a folder or other non-file where the
file should be, is renamed to ``<name>.damaged-YYYYmmdd-HHMMSS`` (with its ``-wal``/``-shm``
companions) and a fresh database is started; one warning line names both paths. Nothing is
ever deleted: the old queue and history stay available for inspection or recovery by hand.

A database that is fine but cannot be used right now (read-only, locked by another program,
a folder we may not write) is not moved: ``DatabaseUnavailable`` says why in one line, so the
server can exit with it instead of a traceback or a 500 on every write.
"""
from __future__ import annotations

import logging
import sqlite3
import stat
import time
from pathlib import Path

log = logging.getLogger("cascade.store")
# Error names that mean "the bytes are not a usable database" (as opposed to busy, locked or
# permission problems, where moving the file aside would be wrong).
DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


class DamagedDatabase(Exception):
    pass


class DatabaseUnavailable(RuntimeError):
    """The database (or its folder) cannot be opened for writing; ``str()`` is one line."""


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """A connection (autocommit, WAL) to `path` with `schema` applied; see the module doc.

    Raises DatabaseUnavailable when the file or its folder cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return _connect(path, schema)
        except DamagedDatabase as exc:
            moved = move_aside(path)
            log.warning("database %s is unusable (%s); moved it to %s and started an empty one",
                        path, exc, moved)
            return _connect(path, schema)
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnavailable(f"cannot use the database {path}: {exc}{_hint(exc)}") from None
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot use the database {path}: {exc.strerror or exc}; "
                                  "check the folder's permissions or pass --data DIR") from None


def _hint(exc: sqlite3.DatabaseError) -> str:
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return " (another program has it open: close it, or pass --data DIR)"
    return " (check that the file and its folder are writable, or pass --data DIR)"


def _connect(path: Path, schema: str) -> sqlite3.Connection:
    if path.is_dir():
        raise DamagedDatabase("a folder is where the database file should be")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise DamagedDatabase("something other than a file (a pipe, socket or device) is where "
                              "the database file should be")
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        # Checks first, read-only, so a file that is moved aside is moved byte for byte.
        # quick_check reads every page once: a truncated file shows up here, not mid-job.
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise DamagedDatabase(f"integrity check: {verdict}")
        missing = _missing_columns(db, schema)
        required = [f"{table}.{name}" for table, name, _, needed in missing if needed]
        if required:
            raise DamagedDatabase(f"not this program's tables (missing {', '.join(required)})")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for table, name, decl, _ in missing:  # an older version of ours: add what it lacks
            db.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {decl}')
        db.executescript(schema)
        # A write now, so a read-only file or folder is refused at start-up, not by every job.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version = {int(version)}")
    except sqlite3.DatabaseError as exc:
        db.close()
        if getattr(exc, "sqlite_errorname", "") in DAMAGED:
            raise DamagedDatabase(str(exc)) from exc
        raise
    except DamagedDatabase:
        db.close()
        raise
    return db


def _missing_columns(db: sqlite3.Connection, schema: str) -> list[tuple[str, str, str, bool]]:
    """(table, column, declared type, required) for each column `schema` declares that the file's
    same-named table lacks. Tables the file does not have yet are fine (the schema creates them).

    A missing NOT NULL column without a default means another program's table (every query would
    fail); a missing nullable one means an older version of ours, and ALTER TABLE can add it."""
    want = sqlite3.connect(":memory:")
    try:
        want.executescript(schema)
        tables = [r[0] for r in want.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        expected = {t: want.execute(f"PRAGMA table_info({t})").fetchall() for t in tables}
    finally:
        want.close()
    missing = []
    for table, columns in expected.items():
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if have:
            missing += [(table, name, decl, bool(notnull) and default is None)
                        for _, name, decl, notnull, default, _ in columns if name not in have]
    return missing


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
