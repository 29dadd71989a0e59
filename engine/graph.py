"""Prompt validation with ComfyUI's error shapes, and dependency helpers for the executor.

Reason and error ``type`` strings, messages and ``extra_info`` keys follow ComfyUI's
``validate_prompt`` so existing clients can display them unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.admission import admission_reasons
from engine.catalogue import input_entry
from engine.coerce import coerce, types_compatible
from engine.schema import COMBO, FLOAT, INT, Input, Node

Registry = Mapping[str, type[Node]]
Prompt = dict[str, dict]
# Largest prompt accepted: real Stable Cascade graphs have tens of nodes; this bounds the cost
# of validating, planning and hashing a hostile one (all three walk it iteratively anyway).
MAX_PROMPT_NODES = 1000


@dataclass
class Validation:
    """Outcome of validating a prompt: ``error`` is None when at least one output is runnable."""

    prompt: Prompt
    outputs: list[str] = field(default_factory=list)
    error: dict | None = None
    node_errors: dict[str, dict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def error(type_: str, message: str, details: str = "", **extra: Any) -> dict:
    """A ComfyUI error/reason object."""
    return {"type": type_, "message": message, "details": details, "extra_info": extra}


def is_link(value: Any) -> bool:
    return isinstance(value, list)


def links_of(node: dict) -> list[tuple[str, str, int]]:
    """(input name, source id, output index) for every well-formed link of a prompt node."""
    out = []
    for name, value in (node.get("inputs") or {}).items():
        if is_link(value) and len(value) == 2 and isinstance(value[1], int):
            out.append((name, str(value[0]), value[1]))
    return out


class _Validator:
    """One validation pass; memoises per-node validity so shared ancestors are checked once.

    The walk is iterative (an explicit stack of frames, dependencies first) so a long chain of
    nodes costs memory, never Python recursion depth.
    """

    def __init__(self, prompt: Prompt, registry: Registry, env: Any):
        self.prompt, self.registry, self.env = prompt, registry, env
        self.valid: dict[str, bool] = {}
        self.visiting: set[str] = set()
        self.reasons: dict[str, list[dict]] = {}

    def node(self, root: str) -> bool:
        """Whether `root` and everything it is linked from are valid (reasons recorded)."""
        if root in self.valid:
            return self.valid[root]
        frames = [self._enter(root)]  # [node id, sources to follow, next index, sources ok]
        while frames:
            frame = frames[-1]
            if frame[2] < len(frame[1]):
                source = frame[1][frame[2]]
                frame[2] += 1
                if source in self.valid:
                    frame[3] = frame[3] and self.valid[source]
                elif source in self.visiting:
                    self.reasons.setdefault(source, []).append(error(
                        "dependency_cycle", "Dependency cycle detected",
                        f"node {source} depends on itself"))
                    frame[3] = False
                else:
                    frames.append(self._enter(source))
                continue
            frames.pop()
            node_id = frame[0]
            self.visiting.discard(node_id)
            self.valid[node_id] = frame[3] and not self.reasons.get(node_id)
            if frames:
                frames[-1][3] = frames[-1][3] and self.valid[node_id]
        return self.valid[root]

    def _enter(self, node_id: str) -> list:
        self.visiting.add(node_id)
        return [node_id, self._check(node_id), 0, True]

    def _check(self, node_id: str) -> list[str]:
        """Record `node_id`'s own reasons; returns the sources whose validity it depends on."""
        node = self.prompt[node_id]
        cls = self.registry[node["class_type"]]
        inputs = node.setdefault("inputs", {})
        sources, own, literals = [], self.reasons.setdefault(node_id, []), {}
        meta = node.get("_meta")  # engine.workflow names links it dropped (muted/bypassed source)
        left_out = meta.get("left_out") if isinstance(meta, dict) else None
        left_out = left_out if isinstance(left_out, dict) else {}
        for inp in cls.INPUTS:
            if inp.name not in inputs:
                if not inp.optional:
                    why = left_out.get(inp.name)
                    own.append(error("required_input_missing", "Required input is missing",
                                     f"{inp.name}: {why}" if isinstance(why, str) else inp.name,
                                     input_name=inp.name))
                continue
            value = inputs[inp.name]
            if is_link(value):
                source = self._check_link(inp, value, own)
                if source is not None:
                    sources.append(source)
                continue
            config = input_entry(inp, self.env)
            try:
                value = coerce(inp, value)
            except (TypeError, ValueError, OverflowError) as exc:
                own.append(error("invalid_input_type",
                                 f"Failed to convert an input value to a {inp.type} value",
                                 f"{inp.name}, {value!r}, {exc}", input_name=inp.name,
                                 input_config=config, received_value=value, exception_message=str(exc)))
                continue
            inputs[inp.name] = value
            literals[inp.name] = value
            self._check_range(inp, value, config, own)
        # A combo value missing from its list (typically a weights file not on disk) still gets the
        # node's own check, whose message can say where the file belongs; other errors make it moot.
        if all(reason["type"] == "value_not_in_list" for reason in own):
            self._check_custom(cls, node_id, literals, own)
        return sources

    def _check_link(self, inp: Input, value: list, own: list) -> str | None:
        """The linked source's id when the link itself is sound, else None (a reason added)."""
        if len(value) != 2 or not isinstance(value[1], int) or isinstance(value[1], bool):
            own.append(error("bad_linked_input",
                             "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                             f"{inp.name}", input_name=inp.name, received_value=value))
            return None
        source_id = str(value[0])
        source = self.prompt.get(source_id)
        if source is None:
            own.append(error("bad_linked_input", "Linked node does not exist",
                             f"{inp.name}: node {source_id} not in prompt", input_name=inp.name,
                             received_value=value))
            return None
        outputs = self.registry[source["class_type"]].OUTPUTS
        if not 0 <= value[1] < len(outputs):
            own.append(error("bad_linked_input", "Linked output index out of range",
                             f"{inp.name}: {source['class_type']} has {len(outputs)} outputs",
                             input_name=inp.name, received_value=value))
            return None
        received = outputs[value[1]].type
        if not types_compatible(received, inp.type):
            own.append(error("return_type_mismatch", "Return type mismatch between linked nodes",
                             f"{inp.name}, received_type({received}) mismatch input_type({inp.type})",
                             input_name=inp.name, input_config=input_entry(inp, self.env),
                             received_type=received, linked_node=[source_id, value[1]]))
            return None
        value[0] = source_id
        return source_id

    def _check_range(self, inp: Input, value: Any, config: list, own: list) -> None:
        extra = {"input_name": inp.name, "input_config": config, "received_value": value}
        if inp.type in (INT, FLOAT):
            if inp.min is not None and value < inp.min:
                own.append(error("value_smaller_than_min",
                                 f"Value {value} smaller than min of {inp.min}", inp.name, **extra))
            if inp.max is not None and value > inp.max:
                own.append(error("value_bigger_than_max",
                                 f"Value {value} bigger than max of {inp.max}", inp.name, **extra))
        if inp.type == COMBO:
            choices = config[0]
            if value not in choices:
                if len(choices) > 20:
                    shown, extra["input_config"] = f"(list of length {len(choices)})", None
                else:
                    shown = str(choices)
                own.append(error("value_not_in_list", "Value not in list",
                                 f"{inp.name}: '{value}' not in {shown}", **extra))

    def _check_custom(self, cls: type[Node], node_id: str, literals: dict, own: list) -> None:
        try:
            problems = cls.check(self.env, dict(literals)) or {}
        except Exception as exc:  # a buggy check must become a reason, not a 500
            own.append(error("exception_during_validation", "Exception when validating node",
                             str(exc), exception_type=type(exc).__name__))
            return
        for name, message in problems.items():
            own.append(error("custom_validation_failed", "Custom validation failed for node",
                             f"{name} - {message}", input_name=name))


def validate_prompt(prompt: Any, registry: Registry, env: Any,
                    targets: list[str] | None = None) -> Validation:
    """Validate an API prompt; returns a coerced copy, the runnable outputs and any errors.

    A prompt of more than MAX_PROMPT_NODES nodes is refused whole (``prompt_too_large``). When
    per-node checks leave a runnable output, ``env.admit`` (see engine.admission) may still
    refuse outputs whose job would not fit.
    """
    if not isinstance(prompt, dict):
        return Validation({}, error=error("invalid_prompt", "Prompt must be a JSON object", ""))
    if len(prompt) > MAX_PROMPT_NODES:
        return Validation({}, error=error(
            "prompt_too_large", f"Prompt has {len(prompt)} nodes; the limit is {MAX_PROMPT_NODES}",
            f"{len(prompt)} > {MAX_PROMPT_NODES}", limit=MAX_PROMPT_NODES))
    clean: Prompt = {}
    for node_id, node in prompt.items():
        node_id = str(node_id)
        if not isinstance(node, dict) or "class_type" not in node:
            return Validation({}, error=error(
                "invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'"))
        class_type = node["class_type"]
        if not isinstance(class_type, str) or class_type not in registry:
            return Validation({}, error=error(
                "invalid_prompt", f"Cannot execute because node {class_type} does not exist.",
                f"Node ID '#{node_id}'"))
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            return Validation({}, error=error(
                "invalid_prompt", "Node inputs must be a JSON object", f"Node ID '#{node_id}'"))
        clean[node_id] = {"class_type": class_type,
                          "inputs": {k: (list(v) if is_link(v) else v) for k, v in inputs.items()}}
        if isinstance(node.get("_meta"), dict):
            clean[node_id]["_meta"] = node["_meta"]
    outputs = [i for i, n in clean.items() if registry[n["class_type"]].OUTPUT_NODE]
    if targets is not None:
        wanted = {str(t) for t in targets}
        outputs = [i for i in outputs if i in wanted]
    if not outputs:
        return Validation(clean, error=error("prompt_no_outputs", "Prompt has no outputs", ""))
    v = _Validator(clean, registry, env)
    good = [out_id for out_id in outputs if v.node(out_id)]
    needs: dict[str, set[str]] = {}

    def need(out_id: str) -> set[str]:  # per-output ancestry, only where an error needs it
        if out_id not in needs:
            needs[out_id] = ancestors(clean, out_id)
        return needs[out_id]

    if good:
        needed = ancestors(clean, *good)  # one walk for what admission looks at
        for node_id, extra in admission_reasons(env, clean, needed, good, error, registry).items():
            v.reasons.setdefault(node_id, []).extend(extra)
            good = [o for o in good if node_id not in need(o)]
    failed = [o for o in outputs if o not in good]
    node_errors: dict[str, dict] = {}
    failed_lines: list[str] = []
    for node_id, reasons in v.reasons.items():
        if not reasons:
            continue
        node_errors[node_id] = {"errors": reasons,
                                "dependent_outputs": [o for o in failed if node_id in need(o)],
                                "class_type": clean[node_id]["class_type"]}
        failed_lines += [f"{r['message']}: {r['details']}" for r in reasons]
    result = Validation(clean, outputs=good, node_errors=node_errors)
    if not good:
        result.error = error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                             "\n".join(failed_lines))
    return result


def ancestors(prompt: Prompt, *starts: str) -> set[str]:
    """The `starts` and every node they are linked from, directly or not (iterative)."""
    seen, stack = set(), list(starts)
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in prompt:
            continue
        seen.add(nid)
        stack.extend(src for _, src, _ in links_of(prompt[nid]))
    return seen
