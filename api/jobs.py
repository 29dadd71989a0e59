"""ComfyUI's jobs API (``/api/jobs``), served bare too; our older ``/jobs/{id}`` replies extended.

``GET /jobs?status=a,b&sort_by=created_at|execution_duration&sort_order=desc|asc&limit=&offset=``
-> ``{"jobs": [record...], "pagination": {"offset", "limit", "total", "has_more"}}``.
``GET /jobs/{id}`` -> one record with outputs, plus our fields (``prompt_id``, ``state``
pending/running/done/cancelled, ``queue_position``, ``progress`` while running, ``history``).
``POST /jobs/{id}/cancel`` and ``POST /jobs/cancel {"job_ids": [...]}`` -> ``{"cancelled": bool}``;
both idempotent: a finished or unknown id is a no-op, not an error.

The one difference between the bare and the ``/api`` form: ``status`` of ``GET /jobs/{id}``.
Under ``/api`` it is ComfyUI's word (pending, in_progress, completed, failed, cancelled); bare
``/jobs/{id}`` keeps the words it always had (pending, running, success, error, interrupted,
cancelled) for existing clients. ``comfy_status`` carries ComfyUI's word on both.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from api.common import BadRequest, json_error, json_response, query_int, read_object, services, want
from engine.joblist import SORT_KEYS, STATUSES, job_record, list_jobs

MAX_BATCH = 1000  # ids per batch cancel; a client cancelling more sends several batches
LEGACY_DONE = {"execution_success": "success", "execution_error": "error",
               "execution_interrupted": "interrupted"}


async def get_jobs(request: web.Request) -> web.Response:
    """The jobs page; bad ``status``/``sort_by``/``sort_order``/``limit``/``offset`` -> 400."""
    query = request.query
    statuses = None
    if query.get("status"):
        statuses = [s.strip().lower() for s in query["status"].split(",") if s.strip()]
        wrong = [s for s in statuses if s not in STATUSES]
        if wrong:
            raise BadRequest(f"query parameter 'status': unknown value(s) {', '.join(wrong)}; "
                             f"use {', '.join(STATUSES)}")
    sort_by = query.get("sort_by", "created_at").lower()
    if sort_by not in SORT_KEYS:
        raise BadRequest("query parameter 'sort_by' must be created_at or execution_duration")
    order = query.get("sort_order", "desc").lower()
    if order not in ("asc", "desc"):
        raise BadRequest("query parameter 'sort_order' must be asc or desc")
    limit = query_int(request, "limit")
    if limit == 0:
        raise BadRequest("query parameter 'limit' must be a positive integer")
    offset = query_int(request, "offset", 0)
    store = services(request).store
    jobs, total = await asyncio.to_thread(list_jobs, store, statuses, sort_by, order == "desc",
                                          limit, offset)
    return json_response({"jobs": jobs, "pagination": {
        "offset": offset, "limit": limit, "total": total,
        "has_more": offset + len(jobs) < total}})


def _unknown_job(prompt_id: str) -> web.Response:
    return json_error(404, f"unknown prompt_id {prompt_id!r}", "not_found")


async def get_job(request: web.Request) -> web.Response:
    """One job wherever it is: pending (with position), running (with progress), done, cancelled."""
    svc = services(request)
    prompt_id = request.match_info["prompt_id"]
    job = svc.store.job(prompt_id)
    record = job_record(svc.store, prompt_id)
    if job is None or record is None:
        return _unknown_job(prompt_id)
    entry = job.pop("entry")
    legacy = job["state"]
    if entry is not None:
        messages = entry["status"]["messages"]
        legacy = LEGACY_DONE.get(messages[-1][0] if messages else "", "error")
    reply = {**record, "prompt_id": prompt_id, **job, "comfy_status": record["status"],
             "status": record["status"] if request.path.startswith("/api/") else legacy}
    running = svc.worker.running_job(prompt_id)
    if job["state"] == "running" and running is not None:
        reply["progress"] = {"node": running.node, "value": running.value, "max": running.max,
                             "worker": running.worker}
    if entry is not None:
        reply["history"] = entry
    return json_response(reply)


def _cancel(request: web.Request, prompt_id: str) -> dict:
    """Cancel one id: pending -> cancelled record, running -> interrupted, else a no-op.

    One worker call decides, so a job that starts between our read and the cancel is
    interrupted rather than missed."""
    svc = services(request)
    job = svc.store.job(prompt_id)
    if job is None:
        return {"prompt_id": prompt_id, "cancelled": False, "state": "unknown"}
    outcome = svc.worker.cancel(prompt_id)
    state = {"removed": "pending", "interrupted": "running"}.get(outcome or "")
    if state is None:
        state = (svc.store.job(prompt_id) or job)["state"]
    return {"prompt_id": prompt_id, "cancelled": outcome is not None, "state": state}


async def cancel_job(request: web.Request) -> web.Response:
    return json_response(_cancel(request, request.match_info["prompt_id"]))


async def cancel_jobs(request: web.Request) -> web.Response:
    """``{"job_ids": [...]}`` -> ``{"cancelled": any cancelled, "jobs": [per-id replies]}``."""
    body = await read_object(request)
    ids = want(body, "job_ids", list)
    if ids is None:
        raise BadRequest("'job_ids' (a list of prompt ids) is required")
    if not all(isinstance(i, str) for i in ids):
        raise BadRequest("'job_ids' must be a list of prompt id strings")
    if len(ids) > MAX_BATCH:
        raise BadRequest(f"'job_ids' holds {len(ids)} ids; at most {MAX_BATCH} per request")
    # Up to MAX_BATCH store reads and worker calls: off the event loop.
    replies = await asyncio.to_thread(lambda: [_cancel(request, pid) for pid in dict.fromkeys(ids)])
    return json_response({"cancelled": any(r["cancelled"] for r in replies), "jobs": replies})


ROUTES = [
    ("GET", "/jobs", get_jobs),
    ("POST", "/jobs/cancel", cancel_jobs),
    ("GET", "/jobs/{prompt_id}", get_job),
    ("POST", "/jobs/{prompt_id}/cancel", cancel_job),
]
