"""ComfyUI editor-format workflows: ``POST /workflow/convert`` and the conversion ``/prompt`` uses."""
from __future__ import annotations

import asyncio
from typing import Any, Mapping

from aiohttp import web

from api.common import BadRequest, json_response, read_object, services
from engine.comfy_workflow import ConvertError, convert, is_editor_workflow
from engine.workflow import document_to_prompt


def convert_or_400(workflow: Any, registry: Mapping) -> tuple[dict, dict, list[str]]:
    """``(document, prompt, missing_classes)``; a malformed file is a BadRequest (400)."""
    try:
        converted = convert(workflow, registry)
    except ConvertError as exc:
        raise BadRequest(f"ComfyUI workflow: {exc}") from None
    prompt = document_to_prompt(converted.document, registry)
    return converted.document, prompt, converted.missing_classes


async def post_convert(request: web.Request) -> web.Response:
    """Body ``{"workflow": <ComfyUI editor JSON>}`` (or the editor JSON itself) ->
    ``{"document", "prompt", "missing_classes"}``. Not an editor workflow -> 400."""
    body = await read_object(request)
    workflow = body.get("workflow", body) if not is_editor_workflow(body) else body
    if not is_editor_workflow(workflow):
        raise BadRequest("'workflow' must be a ComfyUI editor workflow "
                         "(an object with a 'nodes' list and 'links')")
    registry = services(request).registry
    document, prompt, missing = await asyncio.to_thread(convert_or_400, workflow, registry)
    return json_response({"document": document, "prompt": prompt, "missing_classes": missing})


ROUTES = [("POST", "/workflow/convert", post_convert)]
