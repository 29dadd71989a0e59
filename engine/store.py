"""Durable queue + history in one SQLite table (WAL), safe to share between threads.

Each job row moves pending -> running -> done. Restart policy: a job found ``running`` when
the store opens was cut off by a crash; it is finished as *interrupted* (history entry with an
``execution_interrupted`` message saying so) rather than re-queued, because a job that crashed
the process (e.g. out of memory) would otherwise crash it again on every start.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    prompt_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    number REAL NOT NULL,
    state TEXT NOT NULL,
    prompt TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    outputs TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    done_seq INTEGER,
    entry TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, number, seq);
CREATE INDEX IF NOT EXISTS jobs_done ON jobs(done_seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    """Queue and history rows; every method is one short transaction under a lock."""

    def __init__(self, path: Path, history_max: int = 10000):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.history_max = history_max
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._recover()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple = ()) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return row[0] if row else None

    def _recover(self) -> None:
        with self._lock:
            rows = self._db.execute(
                "SELECT prompt_id, number, prompt, extra_data, outputs FROM jobs "
                "WHERE state='running'").fetchall()
        for pid, number, prompt, extra, outputs in rows:
            item = [number, pid, json.loads(prompt), json.loads(extra), json.loads(outputs)]
            msg = {"prompt_id": pid, "node_id": None, "node_type": None, "executed": [],
                   "timestamp": int(time.time() * 1000),
                   "reason": "server stopped while this prompt was running"}
            self.finish(pid, history_entry(item, {}, "interrupted",
                                           [["execution_interrupted", msg]]))

    # -- queue -------------------------------------------------------------------------------
    def next_number(self, front: bool = False) -> float:
        """ComfyUI numbering: a counter, negated for ``front`` so it runs before normal jobs."""
        with self._lock:
            seq = (self._one("SELECT MAX(seq) FROM jobs") or 0) + 1
        return float(-seq if front else seq)

    def add(self, prompt_id: str, number: float, prompt: dict, extra_data: dict,
            outputs: list[str]) -> None:
        with self._lock:
            seq = (self._one("SELECT MAX(seq) FROM jobs") or 0) + 1
            self._db.execute(
                "INSERT INTO jobs (prompt_id, seq, number, state, prompt, extra_data, outputs, "
                "created) VALUES (?,?,?,?,?,?,?,?)",
                (prompt_id, seq, number, "pending", to_json(prompt), to_json(extra_data),
                 to_json(outputs), time.time()))

    def exists(self, prompt_id: str) -> bool:
        with self._lock:
            return self._one("SELECT 1 FROM jobs WHERE prompt_id=?", (prompt_id,)) is not None

    def _items(self, state: str) -> list[list]:
        rows = self._db.execute(
            "SELECT number, prompt_id, prompt, extra_data, outputs FROM jobs WHERE state=? "
            "ORDER BY number, seq", (state,)).fetchall()
        return [[_num(n), pid, json.loads(p), json.loads(e), json.loads(o)]
                for n, pid, p, e, o in rows]

    def pending(self) -> list[list]:
        """Pending 5-tuples ``[number, prompt_id, prompt, extra_data, outputs]`` in run order."""
        with self._lock:
            return self._items("pending")

    def running(self) -> list[list]:
        with self._lock:
            return self._items("running")

    def counts(self) -> tuple[int, int]:
        with self._lock:
            pending = self._one("SELECT COUNT(*) FROM jobs WHERE state='pending'")
            running = self._one("SELECT COUNT(*) FROM jobs WHERE state='running'")
        return pending, running

    def take_next(self) -> list | None:
        """Mark the first pending job running and return its 5-tuple (None when empty)."""
        with self._lock:
            row = self._db.execute(
                "SELECT prompt_id FROM jobs WHERE state='pending' ORDER BY number, seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE jobs SET state='running', started=? WHERE prompt_id=?",
                             (time.time(), row[0]))
            return self._items("running")[0]

    def delete_pending(self, ids: list[str]) -> int:
        with self._lock:
            cur = self._db.executemany("DELETE FROM jobs WHERE state='pending' AND prompt_id=?",
                                       [(i,) for i in ids])
            return cur.rowcount

    def clear_pending(self) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM jobs WHERE state='pending'").rowcount

    def move_to_front(self, prompt_id: str) -> bool:
        with self._lock:
            if self._one("SELECT 1 FROM jobs WHERE state='pending' AND prompt_id=?",
                         (prompt_id,)) is None:
                return False
            first = self._one("SELECT MIN(number) FROM jobs WHERE state='pending'")
            self._db.execute("UPDATE jobs SET number=? WHERE prompt_id=?", (first - 1, prompt_id))
            return True

    # -- history -----------------------------------------------------------------------------
    def finish(self, prompt_id: str, entry: dict) -> None:
        """Store the history entry of a job (running or pending) and enforce the history cap."""
        with self._lock:
            done_seq = (self._one("SELECT MAX(done_seq) FROM jobs") or 0) + 1
            self._db.execute("UPDATE jobs SET state='done', finished=?, done_seq=?, entry=? "
                             "WHERE prompt_id=?",
                             (time.time(), done_seq, to_json(entry), prompt_id))
            excess = (self._one("SELECT COUNT(*) FROM jobs WHERE state='done'") or 0) \
                - self.history_max
            if excess > 0:
                self._db.execute("DELETE FROM jobs WHERE prompt_id IN (SELECT prompt_id FROM jobs "
                                 "WHERE state='done' ORDER BY done_seq LIMIT ?)", (excess,))

    def history(self, max_items: int | None = None, offset: int | None = None) -> dict[str, dict]:
        """``{prompt_id: entry}`` oldest first; ``max_items`` without offset gives the newest N."""
        with self._lock:
            total = self._one("SELECT COUNT(*) FROM jobs WHERE state='done'") or 0
            if offset is None:
                offset = max(0, total - max_items) if max_items is not None else 0
            limit = -1 if max_items is None else max_items
            rows = self._db.execute("SELECT prompt_id, entry FROM jobs WHERE state='done' "
                                    "ORDER BY done_seq LIMIT ? OFFSET ?",
                                    (limit, offset)).fetchall()
        return {pid: json.loads(entry) for pid, entry in rows}

    def history_entry(self, prompt_id: str) -> dict | None:
        with self._lock:
            raw = self._one("SELECT entry FROM jobs WHERE state='done' AND prompt_id=?",
                            (prompt_id,))
        return json.loads(raw) if raw else None

    def delete_history(self, ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM jobs WHERE state='done' AND prompt_id=?",
                                 [(i,) for i in ids])

    def clear_history(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE state='done'")

    def job(self, prompt_id: str) -> dict | None:
        """State, position and timestamps of one job, wherever it is."""
        with self._lock:
            row = self._db.execute("SELECT state, number, seq, created, started, finished, entry "
                                   "FROM jobs WHERE prompt_id=?", (prompt_id,)).fetchone()
            if row is None:
                return None
            state, number, seq, created, started, finished, entry = row
            position = None
            if state == "pending":
                position = self._one("SELECT COUNT(*) FROM jobs WHERE state='pending' AND "
                                     "(number < ? OR (number = ? AND seq < ?))",
                                     (number, number, seq))
        return {"state": state, "number": _num(number), "queue_position": position,
                "created": created, "started": started, "finished": finished,
                "entry": json.loads(entry) if entry else None}

    # -- settings ----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            value = self._one("SELECT value FROM meta WHERE key=?", (key,))
        return default if value is None else value

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                             "DO UPDATE SET value=excluded.value", (key, value))


def history_entry(item: list, outputs: dict, status: str, messages: list,
                  warnings: list | None = None) -> dict:
    """A ComfyUI history entry; ``status`` is success/error/interrupted (the last two -> error)."""
    entry = {
        "prompt": item,
        "outputs": outputs,
        "status": {"status_str": "success" if status == "success" else "error",
                   "completed": status == "success", "messages": messages},
        "meta": {nid: {"node_id": nid, "display_node": nid, "parent_node": None,
                       "real_node_id": nid} for nid in outputs},
    }
    if warnings:
        entry["warnings"] = warnings
    return entry


def to_json(value: Any) -> str:
    """JSON for storage; a node's non-JSON ``ui`` value is stored as its string form."""
    return json.dumps(value, default=str)


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
