"""Declarative node schema: typed inputs/outputs, the node base class and the run context.

A node class declares what it takes and gives as data (``INPUTS``/``OUTPUTS``) and implements
``run``. Everything else (validation, the editor's widgets, ``/object_info``) is derived from
these declarations, so a node never describes itself twice.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

# Widget ("primitive") types. Any other upper-case string is a socket-only type.
INT, FLOAT, STRING, BOOLEAN = "INT", "FLOAT", "STRING", "BOOLEAN"
COMBO = "COMBO"
PRIMITIVES = frozenset({INT, FLOAT, STRING, BOOLEAN, COMBO})

Choices = Sequence[str] | Callable[[Any], Sequence[str]]


@dataclass(frozen=True)
class Input:
    """One named input. A widget input (primitive type) may always be fed by a link instead."""

    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: Choices | None = None  # list, or callable(env) -> list evaluated at request time
    multiline: bool = False
    optional: bool = False
    tooltip: str = ""
    seed: bool = False  # editor offers randomise/increment after queueing (control_after_generate)
    upload: bool = False  # a file combo the editor can add to by uploading an image (ComfyUI's image_upload)
    round: float | None = None  # FLOAT precision the editor keeps, when finer than step (ComfyUI's cfg: 0.01)

    @property
    def is_widget(self) -> bool:
        return self.type in PRIMITIVES

    def choice_list(self, env: Any) -> list[str]:
        if self.choices is None:
            return []
        values = self.choices(env) if callable(self.choices) else self.choices
        return list(values)


@dataclass(frozen=True)
class Output:
    name: str
    type: str
    tooltip: str = ""


@dataclass
class Result:
    """What ``Node.run`` may return instead of a bare tuple: outputs plus a ``ui`` dict for history."""

    outputs: tuple = ()
    ui: dict | None = None


class Interrupted(Exception):
    """Raised inside a node when the job's cancel event is set."""


@dataclass
class RunContext:
    """Everything a running node may touch besides its inputs. Passed explicitly; no globals."""

    node_id: str
    prompt_id: str
    env: Any  # the application's environment (config, model residency); nodes know its shape
    cancel: threading.Event
    prompt: dict = field(default_factory=dict)  # the API prompt being run (for PNG embedding)
    extra_pnginfo: dict = field(default_factory=dict)  # e.g. {"workflow": <document>}
    on_progress: Callable[[int, int, Any], None] | None = None  # (value, max, preview PIL image | None)
    on_warning: Callable[[str], None] | None = None
    # Nodes of this prompt that will still run after this one (cached ones will not): lets a node do
    # work for a sibling ahead of time (TextEncode batches the prompts of its siblings, nodes/text_batch.py).
    pending: frozenset = frozenset()

    def check_interrupted(self) -> None:
        if self.cancel.is_set():
            raise Interrupted(f"interrupted in node {self.node_id}")

    def progress(self, value: int, total: int, preview: Any = None) -> None:
        """Report progress; also the cancellation point for long-running nodes."""
        self.check_interrupted()
        if self.on_progress is not None:
            self.on_progress(value, total, preview)

    def warn(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)


class Node:
    """Base class of every node. Subclasses set the class attributes and implement ``run``."""

    TITLE: ClassVar[str] = ""
    CATEGORY: ClassVar[str] = "misc"
    DESCRIPTION: ClassVar[str] = ""
    INPUTS: ClassVar[tuple[Input, ...]] = ()
    OUTPUTS: ClassVar[tuple[Output, ...]] = ()
    OUTPUT_NODE: ClassVar[bool] = False

    @classmethod
    def fingerprint(cls, env: Any, inputs: dict) -> Any:
        """Extra cache-key material computed from literal inputs (e.g. a file's hash).

        Linked inputs are absent from ``inputs``. Return ``float('nan')`` to always re-run.
        """
        return None

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        """Node-specific validation of literal inputs: {input_name: error message}."""
        return {}

    def run(self, ctx: RunContext, **inputs: Any) -> tuple | Result:
        raise NotImplementedError
