"""Prompt submission, queue, interrupt and history (the jobs routes: api/jobs.py)."""
from __future__ import annotations

import asyncio
import math
import unicodedata
import uuid

from aiohttp import web

from api.common import BadRequest, json_response, query_int, read_object, services, truthy, want
from api.webhooks import check_webhook
from api.workflows import convert_or_400
from engine.graph import validate_prompt
from engine.store import StoreRefused
from engine.comfy_workflow import is_editor_workflow
from engine.workflow import document_to_prompt, is_document

SECRET_EXTRA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


async def post_prompt(request: web.Request) -> web.Response:
    """Validate and enqueue; ``?wait=true`` waits for the job's end and adds its history.

    Waiting ends when the job is done (200 + history entry, ``state: "done"``), removed from
    the queue (200, ``state: "cancelled"``, empty outputs), or after ``?timeout=`` seconds,
    the server's ``wait_max_s`` or a shutdown, whichever comes first (202 + current state).
    A prompt_id already in use is a 400, decided by the insert itself."""
    svc = services(request)
    body = await read_object(request)
    if "prompt" not in body:
        return json_response({"error": {"type": "no_prompt", "message": "No prompt provided",
                                        "details": "No prompt provided", "extra_info": {}},
                              "node_errors": {}}, status=400)
    prompt = body["prompt"]
    extra_data = dict(want(body, "extra_data", dict, {}))
    client_id = want(body, "client_id", str)
    prompt_id = want(body, "prompt_id", str) or str(uuid.uuid4())
    number = want(body, "number", (int, float))
    targets = want(body, "partial_execution_targets", list)
    if targets is not None and not all(isinstance(t, (str, int)) for t in targets):
        raise BadRequest("'partial_execution_targets' must be a list of node ids")
    if is_editor_workflow(prompt):  # ComfyUI's editor JSON: converted, then run as our document
        prompt = (await asyncio.to_thread(convert_or_400, prompt, svc.registry))[0]
    if is_document(prompt):
        extra_data.setdefault("extra_pnginfo", {})
        if not isinstance(extra_data["extra_pnginfo"], dict):
            raise BadRequest("'extra_data.extra_pnginfo' must be an object")
        extra_data["extra_pnginfo"] = {**extra_data["extra_pnginfo"], "workflow": prompt}
        prompt = document_to_prompt(prompt, svc.registry)
    if client_id is not None:
        extra_data["client_id"] = client_id
    for key in SECRET_EXTRA_KEYS:
        extra_data.pop(key, None)
    check_prompt_id(prompt_id)
    check_webhook(extra_data, svc.config.webhook_allow)
    if svc.store.exists(prompt_id):  # early answer; the insert below is what decides
        raise BadRequest(f"prompt_id {prompt_id!r} is already in use")
    result = await asyncio.to_thread(validate_prompt, prompt, svc.registry, svc.env, targets)
    if not result.ok:
        return json_response({"error": result.error, "node_errors": result.node_errors},
                             status=400)
    if number is None:
        number = svc.store.next_number(front=truthy(body.get("front", False)))
    wait = truthy(request.query.get("wait", ""))
    asked = query_float(request, "timeout")
    timeout = svc.config.wait_max_s if asked is None else min(asked, svc.config.wait_max_s)
    waiter = svc.hub.wait_for(prompt_id) if wait else None  # before add: no end is missed
    try:
        svc.store.add(prompt_id, number, result.prompt, extra_data, result.outputs)
    except StoreRefused as exc:
        if waiter is not None:
            svc.hub.forget(prompt_id, waiter)
        raise BadRequest(str(exc)) from None
    svc.worker.changed()
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    reply = {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
    if waiter is None:
        return json_response(reply)
    try:
        state, entry = await asyncio.wait_for(asyncio.shield(waiter), timeout)
    except asyncio.TimeoutError:  # still queued/running: 202 and the job's state
        svc.hub.forget(prompt_id, waiter)
        state, entry = (svc.store.job(prompt_id) or {}).get("state", "cancelled"), None
    if state == "cancelled":
        entry = {"outputs": {}, "status": {"status_str": "cancelled", "completed": False,
                                           "messages": []}}
    elif state != "done":
        return json_response({**reply, "state": state}, status=202)
    return json_response({**(entry or {}), **reply, "state": state})


def check_prompt_id(prompt_id: str) -> None:
    """A prompt id must be usable in a URL path (``/jobs/{id}``, ``/history/{id}``): non-empty,
    at most 200 characters, no control or format characters, no ``/`` or ``\\``."""
    bad = [c for c in prompt_id if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
           or c in "/\\"]
    if not prompt_id.strip() or len(prompt_id) > 200 or bad:
        raise BadRequest("'prompt_id' must be 1 to 200 characters without control characters, "
                         "'/' or '\\'" + (f" (found {bad[0]!r})" if bad else ""))


def query_float(request: web.Request, key: str) -> float | None:
    raw = request.query.get(key)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"query parameter '{key}' must be a number") from None
    if not math.isfinite(value) or value < 0:  # inf would wait past the server's bound anyway
        raise BadRequest(f"query parameter '{key}' must be a finite number of seconds, not {raw!r}")
    return value


async def get_prompt(request: web.Request) -> web.Response:
    return json_response({"exec_info": services(request).worker.status()["status"]["exec_info"]})


async def get_queue(request: web.Request) -> web.Response:
    svc = services(request)
    return json_response({"queue_running": svc.store.running(),
                          "queue_pending": svc.store.pending(),
                          "paused": svc.worker.paused})


async def post_queue(request: web.Request) -> web.Response:
    """ComfyUI's ``clear``/``delete``, plus our ``pause`` (bool) and ``front`` (a prompt id)."""
    svc = services(request)
    body = await read_object(request)
    delete = want(body, "delete", list)
    front = want(body, "front", str)
    pause = want(body, "pause", bool)
    if delete is not None and not all(isinstance(i, str) for i in delete):
        raise BadRequest("'delete' must be a list of prompt ids")
    if truthy(body.get("clear", False)):
        svc.store.clear_pending()
    if delete:
        svc.store.delete_pending(delete)
    moved = svc.store.move_to_front(front) if front is not None else None
    if pause is not None:
        svc.worker.set_paused(pause)
    svc.worker.changed()
    reply: dict = {"paused": svc.worker.paused}
    if moved is not None:
        reply["moved"] = moved
    return json_response(reply)


async def post_interrupt(request: web.Request) -> web.Response:
    body = await read_object(request, optional=True)
    prompt_id = want(body, "prompt_id", str)
    interrupted = services(request).worker.interrupt(prompt_id)
    return json_response({"interrupted": interrupted})


async def get_history(request: web.Request) -> web.Response:
    store = services(request).store
    max_items = query_int(request, "max_items")
    offset = query_int(request, "offset")
    return json_response(await asyncio.to_thread(store.history, max_items, offset))


async def get_history_item(request: web.Request) -> web.Response:
    prompt_id = request.match_info["prompt_id"]
    entry = services(request).store.history_entry(prompt_id)
    return json_response({prompt_id: entry} if entry is not None else {})


async def post_history(request: web.Request) -> web.Response:
    store = services(request).store
    body = await read_object(request)
    delete = want(body, "delete", list)
    if delete is not None and not all(isinstance(i, str) for i in delete):
        raise BadRequest("'delete' must be a list of prompt ids")
    if truthy(body.get("clear", False)):
        store.clear_history()
    if delete:
        store.delete_history(delete)
    return json_response({})


ROUTES = [
    ("POST", "/prompt", post_prompt),
    ("GET", "/prompt", get_prompt),
    ("GET", "/queue", get_queue),
    ("POST", "/queue", post_queue),
    ("POST", "/interrupt", post_interrupt),
    ("GET", "/history", get_history),
    ("POST", "/history", post_history),
    ("GET", "/history/{prompt_id}", get_history_item),
]
