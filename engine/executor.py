"""Run a validated prompt: only the needed nodes, in dependency order, reusing cached results.

The executor reports through a plain ``report(event, data)`` callable and stops when the
``threading.Event`` it is given is set. It knows nothing about HTTP or WebSockets.
"""
from __future__ import annotations

import graphlib
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from engine.cache import CachedOutput, OutputCache, signatures
from engine.graph import Prompt, is_link, links_of
from engine.schema import Interrupted, Node, Result, RunContext

Report = Callable[[str, dict], None]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Execution:
    """What one prompt run produced; ``messages`` is the history ``status.messages`` list."""

    status: str  # "success" | "error" | "interrupted"
    outputs: dict[str, dict] = field(default_factory=dict)
    messages: list[list] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    error: dict | None = None


class Executor:
    """Executes prompts against a registry; holds the cross-prompt cache and node instances."""

    def __init__(self, registry: Mapping[str, type[Node]], env: Any,
                 cache: OutputCache | None = None):
        self.registry, self.env = registry, env
        self.cache = cache if cache is not None else OutputCache()
        self._instances: dict[tuple[str, str], Node] = {}  # ComfyUI keeps node objects per id

    def reset(self) -> None:
        """Forget cached results and node instances (POST /free with free_memory)."""
        self.cache.clear()
        self._instances.clear()

    def execute(self, prompt: Prompt, outputs: list[str], *, prompt_id: str, cancel: Any,
                report: Report | None = None, extra_data: dict | None = None) -> Execution:
        """Run `outputs` of a validated `prompt`; never raises for node failures.

        Then calls the env's optional `after_job()` hook, once the job's intermediate values are
        dropped (runtime/env.py hands the freed host memory back to the system there)."""
        try:
            return self._execute(prompt, outputs, prompt_id=prompt_id, cancel=cancel,
                                 report=report, extra_data=extra_data)
        finally:
            hook = getattr(self.env, "after_job", None)
            if callable(hook):
                hook()

    def _execute(self, prompt: Prompt, outputs: list[str], *, prompt_id: str, cancel: Any,
                 report: Report | None, extra_data: dict | None) -> Execution:
        report = report or (lambda event, data: None)
        run = Execution(status="success")

        def emit(event: str, data: dict, history: bool = False) -> None:
            if history:
                run.messages.append([event, data])
            report(event, data)

        emit("execution_start", {"prompt_id": prompt_id, "timestamp": now_ms()}, history=True)
        sigs = signatures(prompt, self.registry, self.env, roots=outputs)
        self.cache.retain(set(sigs.values()))
        needed = self._plan(prompt, outputs, sigs)
        # Like ComfyUI, report every node of the prompt whose result is cached, needed or not.
        run.cached = sorted((n for n in sigs if self.cache.get(sigs[n]) is not None),
                            key=_id_order)
        emit("execution_cached", {"nodes": run.cached, "prompt_id": prompt_id,
                                  "timestamp": now_ms()}, history=True)
        values: dict[str, tuple] = {}
        for nid in run.cached:
            hit = self.cache.get(sigs[nid])
            values[nid] = hit.outputs
            if hit.ui is not None and nid in outputs:
                run.outputs[nid] = hit.ui
                emit("executed", {"node": nid, "display_node": nid, "output": hit.ui,
                                  "prompt_id": prompt_id})
        # Built in id order: a set's order changes with each process's hash seed, and the same
        # prompt must run its nodes (and send its messages) in the same order in every process.
        order = graphlib.TopologicalSorter(
            {nid: sorted({src for _, src, _ in links_of(prompt[nid]) if src in needed},
                         key=_id_order) for nid in sorted(needed, key=_id_order)})
        extra = extra_data or {}
        pending = set(needed)
        for nid in order.static_order():
            node = prompt[nid]
            pending.discard(nid)
            inputs = self._inputs(node, values)
            try:
                if cancel.is_set():
                    raise Interrupted(f"interrupted before node {nid}")
                emit("executing", {"node": nid, "display_node": nid, "prompt_id": prompt_id})
                result = self._run_node(nid, node, inputs, prompt, prompt_id, cancel, extra,
                                        report, run, frozenset(pending))
            except Interrupted:
                run.status = "interrupted"
                emit("execution_interrupted", {
                    "prompt_id": prompt_id, "node_id": nid, "node_type": node["class_type"],
                    "executed": list(run.executed), "timestamp": now_ms()}, history=True)
                return run
            except Exception as exc:
                run.status = "error"
                run.error = {
                    "prompt_id": prompt_id, "node_id": nid, "node_type": node["class_type"],
                    "executed": list(run.executed), "exception_message": str(exc) or repr(exc),
                    "exception_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "traceback": traceback.format_exception(exc),
                    "current_inputs": {k: [_short(v)] for k, v in inputs.items()},
                    "current_outputs": sorted(values, key=_id_order), "timestamp": now_ms()}
                emit("execution_error", run.error, history=True)
                return run
            values[nid] = result.outputs
            run.executed.append(nid)
            self.cache.put(sigs[nid], CachedOutput(result.outputs, result.ui))
            if result.ui is not None:
                run.outputs[nid] = result.ui
                emit("executed", {"node": nid, "display_node": nid, "output": result.ui,
                                  "prompt_id": prompt_id})
        emit("execution_success", {"prompt_id": prompt_id, "timestamp": now_ms()}, history=True)
        return run

    def _plan(self, prompt: Prompt, outputs: list[str], sigs: dict[str, str]) -> set[str]:
        """Nodes to run, walking back from the outputs and stopping at cached results."""
        needed, stack = set(), list(outputs)
        while stack:
            nid = stack.pop()
            if nid in needed or self.cache.get(sigs[nid]) is not None:
                continue  # a cached node's inputs need not be computed at all
            needed.add(nid)
            stack.extend(src for _, src, _ in links_of(prompt[nid]))
        return needed

    def _inputs(self, node: dict, values: dict[str, tuple]) -> dict[str, Any]:
        """Linked values and literals, plus declared defaults for absent optional inputs."""
        cls = self.registry[node["class_type"]]
        given = node["inputs"]
        result: dict[str, Any] = {}
        for inp in cls.INPUTS:
            if inp.name not in given:
                result[inp.name] = inp.default
                continue
            value = given[inp.name]
            if is_link(value):
                source = values.get(str(value[0]))
                result[inp.name] = source[value[1]] if source is not None else None
            else:
                result[inp.name] = value
        return result

    def _run_node(self, nid: str, node: dict, inputs: dict, prompt: Prompt, prompt_id: str,
                  cancel: Any, extra: dict, report: Report, run: Execution,
                  pending: frozenset = frozenset()) -> Result:
        class_type = node["class_type"]
        key = (nid, class_type)
        instance = self._instances.get(key)
        if instance is None:
            instance = self._instances[key] = self.registry[class_type]()

        def on_progress(value: int, total: int, preview: Any) -> None:
            report("progress", {"value": int(value), "max": int(total), "prompt_id": prompt_id,
                                "node": nid})
            if preview is not None:
                report("preview", {"image": preview, "node_id": nid, "prompt_id": prompt_id})

        def on_warning(message: str) -> None:
            item = {"node_id": nid, "node_type": class_type, "message": str(message)}
            run.warnings.append(item)
            report("warning", dict(item, prompt_id=prompt_id))

        ctx = RunContext(node_id=nid, prompt_id=prompt_id, env=self.env, cancel=cancel,
                         prompt=prompt, extra_pnginfo=dict(extra.get("extra_pnginfo") or {}),
                         on_progress=on_progress, on_warning=on_warning, pending=pending)
        raw = instance.run(ctx, **inputs)
        result = raw if isinstance(raw, Result) else Result(outputs=tuple(raw or ()))
        result.outputs = tuple(result.outputs or ())
        expected = len(self.registry[class_type].OUTPUTS)
        if len(result.outputs) != expected:
            raise TypeError(f"{class_type}.run returned {len(result.outputs)} outputs, "
                            f"declared {expected}")
        return result


def _id_order(node_id: str) -> tuple:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "…"
