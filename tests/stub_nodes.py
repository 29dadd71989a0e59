"""Cheap, torch-free stub nodes with typed sockets for engine and server tests.

Every node records its runs in ``env.runs`` (the test's own env object; no globals), so
tests can assert exactly which nodes re-ran.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.schema import (BOOLEAN, COMBO, FLOAT, INT, STRING, Input, Node, Output, Result,
                           RunContext)

NUMBER = "NUMBER"
TEXT = "TEXT"


@dataclass
class StubEnv:
    """What the stub nodes need from the application environment."""

    output_dir: Path
    runs: list = field(default_factory=list)
    choices: list = field(default_factory=lambda: ["alpha", "beta"])
    started: threading.Event = field(default_factory=threading.Event)  # set by Slow when running
    freed: list = field(default_factory=list)

    def record(self, ctx: RunContext, name: str) -> None:
        self.runs.append((ctx.node_id, name))

    def free_memory(self, unload_models: bool) -> None:
        self.freed.append(unload_models)


class Const(Node):
    """A number literal."""

    CATEGORY = "stub"
    INPUTS = (Input("value", INT, default=1, min=-1000, max=1000),)
    OUTPUTS = (Output("number", NUMBER),)

    def run(self, ctx, value):
        ctx.env.record(ctx, "Const")
        return (value,)


class Add(Node):
    """a + b (+ an optional c)."""

    CATEGORY = "stub"
    INPUTS = (Input("a", NUMBER), Input("b", NUMBER), Input("c", NUMBER, optional=True))
    OUTPUTS = (Output("sum", NUMBER),)

    def run(self, ctx, a, b, c=None):
        ctx.env.record(ctx, "Add")
        return (a + b + (c or 0),)


class Scale(Node):
    """x * factor, with a float widget and a combo."""

    CATEGORY = "stub"
    INPUTS = (Input("x", NUMBER), Input("factor", FLOAT, default=1.0, min=0.0, max=10.0, step=0.5),
              Input("mode", COMBO, choices=("mul", "div"), default="mul"))
    OUTPUTS = (Output("number", NUMBER),)

    def run(self, ctx, x, factor, mode):
        ctx.env.record(ctx, "Scale")
        return (x * factor if mode == "mul" else x / factor,)


class Pick(Node):
    """Choices from the env (like model pickers) and a node-specific check."""

    CATEGORY = "stub"
    INPUTS = (Input("name", COMBO, choices=lambda env: env.choices),
              Input("text", STRING, default="", multiline=True),
              Input("flag", BOOLEAN, default=False, optional=True),
              Input("seed", INT, default=0, min=0, max=2**64 - 1, seed=True, optional=True))
    OUTPUTS = (Output("text", TEXT),)

    @classmethod
    def check(cls, env, inputs):
        return {"text": "must not be 'bad'"} if inputs.get("text") == "bad" else {}

    def run(self, ctx, name, text, flag, seed):
        ctx.env.record(ctx, "Pick")
        return (f"{name}:{text}:{flag}:{seed}",)


class Slow(Node):
    """Sleeps `steps` × `delay` s, reporting progress (and an optional preview) each step."""

    CATEGORY = "stub"
    INPUTS = (Input("x", NUMBER), Input("steps", INT, default=5, min=1, max=1000),
              Input("delay", FLOAT, default=0.01, min=0.0, max=5.0),
              Input("preview", BOOLEAN, default=False))
    OUTPUTS = (Output("number", NUMBER),)

    def run(self, ctx, x, steps, delay, preview):
        ctx.env.record(ctx, "Slow")
        ctx.env.started.set()
        for i in range(steps):
            time.sleep(delay)
            image = None
            if preview:
                from PIL import Image
                image = Image.new("RGB", (16, 16), (i * 20 % 256, 0, 0))
            ctx.progress(i + 1, steps, image)
        return (x,)


class Fail(Node):
    """Raises with the given message."""

    CATEGORY = "stub"
    INPUTS = (Input("x", NUMBER), Input("message", STRING, default="boom"))
    OUTPUTS = (Output("number", NUMBER),)

    def run(self, ctx, x, message):
        ctx.env.record(ctx, "Fail")
        raise RuntimeError(message)


class Warn(Node):
    """Passes x through and adds a job warning."""

    CATEGORY = "stub"
    INPUTS = (Input("x", NUMBER),)
    OUTPUTS = (Output("number", NUMBER),)

    def run(self, ctx, x):
        ctx.env.record(ctx, "Warn")
        ctx.warn(f"suspicious value {x}")
        return (x,)


class Show(Node):
    """Output node with a text ``ui``."""

    CATEGORY = "stub"
    OUTPUT_NODE = True
    INPUTS = (Input("x", NUMBER),)
    OUTPUTS = ()

    def run(self, ctx, x):
        ctx.env.record(ctx, "Show")
        return Result(ui={"text": [str(x)]})


class ShowText(Node):
    """Output node for TEXT."""

    CATEGORY = "stub"
    OUTPUT_NODE = True
    INPUTS = (Input("text", TEXT),)

    def run(self, ctx, text):
        ctx.env.record(ctx, "ShowText")
        return Result(ui={"text": [text]})


class SaveNumberImage(Node):
    """Output node that writes a real PNG (grey level = x) into the output folder."""

    CATEGORY = "stub"
    OUTPUT_NODE = True
    INPUTS = (Input("x", NUMBER), Input("filename_prefix", STRING, default="stub"))

    def run(self, ctx, x, filename_prefix):
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo
        ctx.env.record(ctx, "SaveNumberImage")
        folder = Path(ctx.env.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        index = len(list(folder.glob(f"{filename_prefix}_*.png"))) + 1
        name = f"{filename_prefix}_{index:05d}_.png"
        info = PngInfo()
        info.add_text("prompt", str(ctx.prompt))
        Image.new("RGB", (8, 8), (int(x) % 256,) * 3).save(folder / name, pnginfo=info)
        return Result(ui={"images": [{"filename": name, "subfolder": "", "type": "output"}]})


class ShowRatio(Node):
    """Output node whose ``ui`` holds x / divisor: ``inf`` or ``nan`` when divisor is 0.

    Stands for a node with a bug: a non-finite number in its ui must never reach a reply.
    """

    CATEGORY = "stub"
    OUTPUT_NODE = True
    INPUTS = (Input("x", NUMBER), Input("divisor", FLOAT, default=1.0, min=-10.0, max=10.0))

    def run(self, ctx, x, divisor):
        ctx.env.record(ctx, "ShowRatio")
        ratio = x / divisor if divisor else (math.copysign(math.inf, x) if x else math.nan)
        return Result(ui={"ratio": [ratio]})


STUB_NODES: dict[str, type[Node]] = {
    "Const": Const, "Add": Add, "Scale": Scale, "Pick": Pick, "Slow": Slow, "Fail": Fail,
    "Warn": Warn, "Show": Show, "ShowText": ShowText, "SaveNumberImage": SaveNumberImage,
    "ShowRatio": ShowRatio,
}


def chain_prompt(value: int = 3, steps: int = 1, delay: float = 0.0) -> dict:
    """Const -> Slow -> Scale -> SaveNumberImage, plus Const -> Show."""
    return {
        "1": {"class_type": "Const", "inputs": {"value": value}},
        "2": {"class_type": "Slow", "inputs": {"x": ["1", 0], "steps": steps, "delay": delay,
                                               "preview": False}},
        "3": {"class_type": "Scale", "inputs": {"x": ["2", 0], "factor": 2.0, "mode": "mul"}},
        "4": {"class_type": "SaveNumberImage", "inputs": {"x": ["3", 0], "filename_prefix": "t"}},
    }


def long_chain_prompt(length: int, value: int = 2) -> dict:
    """Const -> Scale x (length - 2) -> Show: `length` nodes, each linked to the one before."""
    prompt = {"1": {"class_type": "Const", "inputs": {"value": value}}}
    for i in range(2, length):
        prompt[str(i)] = {"class_type": "Scale",
                          "inputs": {"x": [str(i - 1), 0], "factor": 1.0, "mode": "mul"}}
    prompt[str(length)] = {"class_type": "Show", "inputs": {"x": [str(length - 1), 0]}}
    return prompt
