"""Admission: the environment's last word on a prompt whose every node is valid on its own.

A node can check its own widgets, but not what the whole job will cost: 8192 x 8192 at batch 64
is a valid size, a valid batch and a job the machine cannot hold. An environment that can
estimate that offers ``admit``; validation calls it once per prompt, after per-node checks.

Contract: ``env.admit(prompt) -> {node_id: {input_name: message}}`` where `prompt` maps the node
ids the runnable outputs need to ``{"class_type": str, "inputs": dict}`` with literals coerced
and links as ``[source_id, output_index]``, plus ``"class"``: the node class (None without a
registry), so the environment can ask a class what it loads without importing the node package.
An empty result admits the prompt.
"""
from __future__ import annotations

from typing import Any, Callable

Prompt = dict[str, dict]
Reason = Callable[..., dict]


def admission_reasons(env: Any, prompt: Prompt, needed: set[str], outputs: list[str],
                      make_error: Reason, registry: Any = None) -> dict[str, list[dict]]:
    """Reasons per node id from ``env.admit`` (``{}`` without the hook or when admitted).

    A problem on an id not in `needed`, a malformed answer or an exception inside ``admit``
    is put on every output in `outputs`: admission that cannot be decided refuses the job
    (running it might get the server killed) but never becomes a 500.
    """
    hook = getattr(env, "admit", None)
    if not callable(hook):
        return {}
    view = {nid: {"class_type": prompt[nid]["class_type"],
                  "class": (registry or {}).get(prompt[nid]["class_type"]),
                  "inputs": {k: (list(v) if isinstance(v, list) else v)
                             for k, v in prompt[nid]["inputs"].items()}}
            for nid in prompt if nid in needed}
    reasons: dict[str, list[dict]] = {}

    def everywhere(reason: dict) -> None:
        for out in outputs:
            reasons.setdefault(out, []).append(reason)

    try:
        problems = hook(view) or {}
        if not isinstance(problems, dict):
            raise TypeError(f"admit returned {type(problems).__name__}, not a dict")
        for node_id, by_input in problems.items():
            if not isinstance(by_input, dict):
                raise TypeError(f"admit returned {type(by_input).__name__} for node {node_id}")
            for name, message in by_input.items():
                reason = make_error("insufficient_memory", "Not enough memory to run this prompt",
                                    f"{name} - {message}", input_name=str(name))
                if str(node_id) in view:
                    reasons.setdefault(str(node_id), []).append(reason)
                else:
                    everywhere(reason)
    except Exception as exc:  # a buggy estimate must become a reason, not a 500
        reasons = {}
        everywhere(make_error("exception_during_validation",
                              "Exception when checking the prompt's memory needs", str(exc),
                              exception_type=type(exc).__name__))
    return reasons
