"""Durable queue + history in one SQLite table (WAL), safe to share between threads.

Each job row moves pending -> running -> done. Restart policy: a job found ``running`` when
the store opens was cut off by a crash; it is finished as *interrupted* (history entry with an
``execution_interrupted`` message saying so) rather than re-queued, because a job that crashed
the process (e.g. out of memory) would otherwise crash it again on every start.

Every way a job leaves the queue (finished, cancelled, cleared) calls ``on_end(prompt_id,
state, entry)`` so that whoever waits for it (``POST /prompt?wait=true``, a webhook) is answered;
a cancelled pending job's entry is an interrupted record that is not stored as history.

A pending job removed from the queue (cancel, ``/queue`` delete or clear) is kept as a
``cancelled`` row, so ``GET /jobs`` can say "cancelled" instead of "unknown". Such rows are
invisible to ComfyUI's ``/queue`` and ``/history`` (which read only pending/running/done), are
capped like the history, and do not hold their id: a new prompt may reuse it.
"""
from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

from engine.dbfile import open_database

MAX_NUMBER = 2 ** 53  # queue numbers are exact in the REAL column up to here
ITEM_COLUMNS = "number, prompt_id, prompt, extra_data, outputs"
OnEnd = Callable[[str, str, "dict | None"], None]

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
    entry TEXT,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, number, seq);
CREATE INDEX IF NOT EXISTS jobs_done ON jobs(done_seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreRefused(ValueError):
    """A value that cannot be stored (non-finite or out-of-range number, duplicate id)."""


class DuplicateJob(StoreRefused):
    pass


class Store:
    """Queue and history rows; every method is one short transaction under a lock.

    ``on_end`` (settable) is called outside the lock, from the calling thread, with state
    ``"done"`` (and the history entry) or ``"cancelled"`` (and None).
    """

    def __init__(self, path: Path, history_max: int = 10000, on_end: OnEnd | None = None):
        self.history_max = history_max
        self.on_end = on_end
        self._lock = threading.Lock()
        self._db = open_database(path, SCHEMA)
        # The highest sequence number ever given out, also those of deleted jobs (kept in meta):
        # clearing the queue or the history never makes numbers start again at 1 (ComfyUI's
        # counter only grows, and clients key their bookkeeping on it). One server per data
        # folder (engine/datalock.py), so this copy is the authority after start-up.
        self._last_seq = max(self._one("SELECT MAX(seq) FROM jobs") or 0,
                             int(self._one("SELECT value FROM meta WHERE key='last_seq'") or 0))
        self._recover()

    def _ended(self, prompt_id: str, state: str, entry: dict | None) -> None:
        if self.on_end is not None:
            self.on_end(prompt_id, state, entry)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple = ()) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return row[0] if row else None

    def _recover(self) -> None:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT prompt_id FROM jobs WHERE state='running'")]
        for pid in ids:
            self.interrupt(pid, "server stopped while this prompt was running")

    def interrupt(self, prompt_id: str, reason: str) -> None:
        """Record a running job as interrupted (an ``execution_interrupted`` message saying why);
        nothing happens when it is not running."""
        with self._lock:
            row = self._db.execute(f"SELECT {ITEM_COLUMNS} FROM jobs WHERE prompt_id=? AND "
                                   "state='running'", (prompt_id,)).fetchone()
        if row is None:
            return
        msg = {"prompt_id": prompt_id, "node_id": None, "node_type": None, "executed": [],
               "timestamp": int(time.time() * 1000), "reason": reason}
        self.finish(prompt_id, history_entry(_item(row), {}, "interrupted",
                                             [["execution_interrupted", msg]]))

    # -- queue -------------------------------------------------------------------------------
    def next_number(self, front: bool = False) -> int:
        """ComfyUI numbering: a counter, negated for ``front`` so it runs before normal jobs."""
        with self._lock:
            seq = self._next_seq()
        return -seq if front else seq

    def _next_seq(self) -> int:
        return self._last_seq + 1

    def add(self, prompt_id: str, number: int | float, prompt: dict, extra_data: dict,
            outputs: list[str]) -> None:
        """Queue a job. Raises DuplicateJob for a used id (the PRIMARY KEY decides, so two
        concurrent adds cannot both win) and StoreRefused for a number or value that cannot
        be stored (non-finite, or |number| > 2**53)."""
        if isinstance(number, bool) or not isinstance(number, (int, float)) \
                or not (isinstance(number, int) or math.isfinite(number)) \
                or abs(number) > MAX_NUMBER:
            raise StoreRefused(f"'number' must be a finite number within ±{MAX_NUMBER}")
        row = (to_json(prompt), to_json(extra_data), to_json(outputs))
        with self._lock:
            seq = self._next_seq()
            # A cancelled record gives its id up; same transaction, so the insert still decides.
            self._db.execute("DELETE FROM jobs WHERE prompt_id=? AND state='cancelled'",
                             (prompt_id,))
            try:
                self._db.execute(
                    "INSERT INTO jobs (prompt_id, seq, number, state, prompt, extra_data, "
                    "outputs, created) VALUES (?,?,?,?,?,?,?,?)",
                    (prompt_id, seq, float(number), "pending", *row, time.time()))
            except sqlite3.IntegrityError:
                raise DuplicateJob(f"prompt_id {prompt_id!r} is already in use") from None
            self._db.execute("INSERT INTO meta(key, value) VALUES ('last_seq', ?) ON CONFLICT(key) "
                             "DO UPDATE SET value=excluded.value", (str(seq),))
            self._last_seq = seq

    def exists(self, prompt_id: str) -> bool:
        with self._lock:
            return self._one("SELECT 1 FROM jobs WHERE prompt_id=? AND state!='cancelled'",
                             (prompt_id,)) is not None

    def _items(self, state: str) -> list[list]:
        rows = self._db.execute(
            f"SELECT {ITEM_COLUMNS} FROM jobs WHERE state=? ORDER BY number, seq",
            (state,)).fetchall()
        return [_item(row) for row in rows]

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

    def take_next(self, worker: str | None = "local") -> list | None:
        """Mark the first pending job running (on `worker`, a name /api/jobs shows: the
        in-process worker unless named) and return ITS 5-tuple (None when empty).

        One statement picks and marks the row, so a job left running (e.g. its finish failed)
        can never be handed out again in place of the next pending one."""
        with self._lock:
            row = self._db.execute(
                "UPDATE jobs SET state='running', started=?, worker=? WHERE prompt_id = (SELECT "
                "prompt_id FROM jobs WHERE state='pending' ORDER BY number, seq LIMIT 1) "
                f"RETURNING {ITEM_COLUMNS}", (time.time(), worker)).fetchone()
        return None if row is None else _item(row)

    def set_worker(self, prompt_id: str, worker: str) -> None:
        """Name the worker a running job was leased to (engine/dispatch.py)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET worker=? WHERE prompt_id=?", (worker, prompt_id))

    def requeue(self, prompt_id: str) -> bool:
        """Put a running job that never started back in the queue, at its old place (a worker
        that died before the job reached it: engine/dispatch.py). False if it was not running."""
        with self._lock:
            row = self._db.execute("UPDATE jobs SET state='pending', started=NULL, worker=NULL "
                                   "WHERE prompt_id=? AND state='running' RETURNING 1",
                                   (prompt_id,)).fetchone()
        return row is not None

    def delete_pending(self, ids: list[str]) -> int:
        """Remove these pending jobs (others are ignored); their waiters get "cancelled"."""
        return self._remove("AND prompt_id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))

    def clear_pending(self) -> int:
        return self._remove("", ())

    def _remove(self, where: str, args: tuple) -> int:
        """Mark pending jobs cancelled (kept as records, capped at ``history_max``)."""
        with self._lock:
            gone = [_item(r) for r in self._db.execute(
                f"UPDATE jobs SET state='cancelled', finished=? WHERE state='pending' {where} "
                f"RETURNING {ITEM_COLUMNS}", (time.time(), *args))]
            self._cap("cancelled", "finished")
        for item in gone:  # the record says why, so a webhook or waiter hears how the job ended
            msg = {"prompt_id": item[1], "node_id": None, "node_type": None, "executed": [],
                   "timestamp": int(time.time() * 1000), "reason": "removed from the queue before it ran"}
            self._ended(item[1], "cancelled", history_entry(item, {}, "interrupted",
                                                            [["execution_interrupted", msg]]))
        return len(gone)

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
        """Store the history entry of a job (running or pending) and enforce the history cap.

        A job already done keeps its first entry (a late finish after shutdown recorded it as
        interrupted changes nothing). Raises StoreRefused if `entry` holds NaN/Infinity."""
        text = to_json(entry)
        with self._lock:
            done_seq = (self._one("SELECT MAX(done_seq) FROM jobs") or 0) + 1
            changed = self._db.execute(
                "UPDATE jobs SET state='done', finished=?, done_seq=?, entry=? "
                "WHERE prompt_id=? AND state IN ('pending', 'running')",
                (time.time(), done_seq, text, prompt_id)).rowcount
            self._cap("done", "done_seq")
        if changed:
            self._ended(prompt_id, "done", entry)

    def _cap(self, state: str, order: str) -> None:
        """Drop the oldest rows of `state` beyond ``history_max`` (caller holds the lock)."""
        excess = (self._one("SELECT COUNT(*) FROM jobs WHERE state=?", (state,)) or 0) \
            - self.history_max
        if excess > 0:
            self._db.execute("DELETE FROM jobs WHERE prompt_id IN (SELECT prompt_id FROM jobs "
                             f"WHERE state=? ORDER BY {order} LIMIT ?)", (state, excess))

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
            self._db.executemany("DELETE FROM jobs WHERE state IN ('done', 'cancelled') "
                                 "AND prompt_id=?",
                                 [(i,) for i in ids])

    def clear_history(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE state IN ('done', 'cancelled')")

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

    def select(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of one read-only query over ``jobs`` (engine/joblist.py builds them)."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

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
    """JSON for storage; a node's non-JSON ``ui`` value is stored as its string form.

    NaN/Infinity are refused (StoreRefused): stored, they would reach every later /queue and
    /history reply as bare tokens that browsers cannot parse."""
    try:
        return json.dumps(value, default=str, allow_nan=False)
    except ValueError as exc:
        raise StoreRefused(f"cannot store a non-finite number (NaN or Infinity): {exc}") from None


def _item(row: tuple) -> list:
    """``[number, prompt_id, prompt, extra_data, outputs]`` from an ITEM_COLUMNS row."""
    number, pid, prompt, extra, outputs = row
    return [_num(number), pid, json.loads(prompt), json.loads(extra), json.loads(outputs)]


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
