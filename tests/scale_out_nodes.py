"""Nodes for the scale-out tests: the stub nodes plus a loader that names the weights it uses,
built in each Ray worker by ``nodes(config)`` (imported by name there, so module-level)."""
from __future__ import annotations

import os

from engine.schema import INT, STRING, Input, Node, Output
from tests.stub_nodes import NUMBER, STUB_NODES, StubEnv


class FakeLoad(Node):
    """Stands for a model loader: `weights_used` names a model file (what admission reads);
    its output is the worker's pid, so a test sees which process ran it."""

    CATEGORY = "stub"
    INPUTS = (Input("file", STRING, default="a.safetensors"),)
    OUTPUTS = (Output("number", NUMBER),)

    @classmethod
    def weights_used(cls, env, inputs):
        return [(f"stage_c/{inputs.get('file')}", None)]

    def run(self, ctx, file):
        ctx.env.record(ctx, "FakeLoad")
        return (os.getpid(),)


class Pid(Node):
    """The pid of the process running it (which worker ran a job), as a number."""

    CATEGORY = "stub"
    INPUTS = (Input("salt", INT, default=0, min=0, max=10 ** 9),)
    OUTPUTS = (Output("number", NUMBER),)

    def run(self, ctx, salt):
        return (os.getpid(),)


NODES = {**STUB_NODES, "FakeLoad": FakeLoad, "Pid": Pid}


def nodes(config):
    return NODES, StubEnv(config.output_dir)
