"""ComfyUI's jobs view of the store: one record per job, in ComfyUI's status words.

ComfyUI (``GET /api/jobs``, 2025) names a job's state ``pending``, ``in_progress``,
``completed``, ``failed`` or ``cancelled``; an interrupted run counts as cancelled, as does a
pending job removed from the queue (which we keep as a ``cancelled`` row, see engine/store.py).
Filtering, sorting and paging run in SQL so a 10,000-entry history is never loaded whole.
"""
from __future__ import annotations

import json
from typing import Any

from engine.store import Store

STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
SORT_KEYS = {"created_at": "created",
             "execution_duration": "COALESCE(finished - started, 0)"}
STATUS_SQL = """CASE
    WHEN state = 'pending' THEN 'pending'
    WHEN state = 'running' THEN 'in_progress'
    WHEN state = 'cancelled' THEN 'cancelled'
    WHEN json_extract(entry, '$.status.status_str') = 'success' THEN 'completed'
    WHEN json_extract(entry, '$.status.messages[#-1][0]') = 'execution_interrupted'
        THEN 'cancelled'
    ELSE 'failed' END"""
COLUMNS = (f"prompt_id, {STATUS_SQL}, number, created, started, finished, extra_data, entry, "
           "prompt, worker")
# Output kinds a client can show (ComfyUI's frontend previews these).
PREVIEWABLE = frozenset({"images", "video", "audio", "gifs", "3d"})


def list_jobs(store: Store, statuses: list[str] | None = None, sort_by: str = "created_at",
              descending: bool = True, limit: int | None = None, offset: int = 0
              ) -> tuple[list[dict], int]:
    """``(records, total)``: the page of jobs whose status is in `statuses` (all if None),
    sorted by `sort_by` (a SORT_KEYS key), and how many match in all."""
    where, args = "", ()
    if statuses is not None:
        where = f"WHERE ({STATUS_SQL}) IN (SELECT value FROM json_each(?))"
        args = (json.dumps(statuses),)
    direction = "DESC" if descending else "ASC"
    order = f"ORDER BY {SORT_KEYS[sort_by]} {direction}, seq {direction}"
    # Pick the page by rowid first (the filter, the count and the sort touch only what they
    # need), then read the wide columns of those rows alone.
    page = store.select(f"SELECT rowid, COUNT(*) OVER () FROM jobs {where} {order} LIMIT ? OFFSET ?",
                        (*args, -1 if limit is None else limit, offset))
    if not page:
        total = store.select(f"SELECT COUNT(*) FROM jobs {where}", args)[0][0] if offset else 0
        return [], total
    rowids = json.dumps([rowid for rowid, _ in page])
    rows = store.select(f"SELECT {COLUMNS} FROM jobs WHERE rowid IN (SELECT value FROM json_each(?)) "
                        f"{order}", (rowids,))
    return [_record(row, detail=False) for row in rows], page[0][1]


def job_record(store: Store, prompt_id: str) -> dict | None:
    """One job's full record (adds ``outputs``, ``execution_status``, ``workflow``), or None."""
    rows = store.select(f"SELECT {COLUMNS} FROM jobs WHERE prompt_id=?", (prompt_id,))
    return _record(rows[0], detail=True) if rows else None


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def _record(row: tuple, detail: bool) -> dict:
    pid, status, number, created, started, finished, extra_raw, entry_raw, prompt_raw, worker = row
    extra = json.loads(extra_raw)
    entry = json.loads(entry_raw) if entry_raw else None
    outputs = entry["outputs"] if entry else {}
    messages = entry["status"]["messages"] if entry else []
    error = next((m[1] for m in reversed(messages) if m and m[0] == "execution_error"), None)
    count, previewable, preview = _summary(outputs)
    workflow = (extra.get("extra_pnginfo") or {}).get("workflow") \
        if isinstance(extra.get("extra_pnginfo"), dict) else None
    record: dict[str, Any] = {
        "id": pid, "status": status, "priority": int(number) if float(number).is_integer()
        else number, "create_time": _ms(created), "execution_start_time": _ms(started),
        "execution_end_time": _ms(finished) if status != "pending" else None,
        "execution_error": error, "outputs_count": count,
        "previewable_outputs_count": previewable, "preview_output": preview,
        "workflow_id": workflow.get("id") if isinstance(workflow, dict) else None,
        "worker": worker,  # who ran / runs it: "local" in-process, a Ray worker's name with --workers
    }
    record = {k: v for k, v in record.items() if v is not None}
    if detail:
        record["outputs"] = outputs
        if entry is not None:
            record["execution_status"] = entry["status"]
        record["workflow"] = {"prompt": json.loads(prompt_raw), "extra_data": extra}
    return record


def _summary(outputs: dict) -> tuple[int, int, dict | None]:
    """(file outputs, previewable ones, the one to show: a saved file before a temp one)."""
    count = previewable = 0
    saved = temp = None
    for node_id, ui in outputs.items():
        if not isinstance(ui, dict):
            continue
        for kind, items in ui.items():
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict):
                    continue  # text values are metadata, not files
                count += 1
                if kind not in PREVIEWABLE:
                    continue
                previewable += 1
                shown = {**item, "nodeId": node_id, "mediaType": kind}
                if item.get("type") == "output":
                    saved = saved or shown
                else:
                    temp = temp or shown
    return count, previewable, saved or temp
