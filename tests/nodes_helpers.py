"""Shared fixtures for the node tests: a Config rooted in a tmp dir, with tiny demo weights."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from config import Config

from runtime.env import Env

ROOT = Path(__file__).resolve().parent.parent


def tmp_config(tmp: Path, **changes) -> Config:
    """A Config whose folders all live under `tmp` (weights shared per test session via `weights`)."""
    dirs = {name: tmp / name for name in ("output", "input", "temp", "user")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    base = dict(weights_dir=tmp / "weights", output_dir=dirs["output"], input_dir=dirs["input"],
                temp_dir=dirs["temp"], data_dir=dirs["user"], demo=True)
    base.update(changes)
    return Config(**base)


def write_weights(weights_dir: Path) -> None:
    """Demo weights into `weights_dir` (models.demo, the loading engineer's writer)."""
    from models.demo import write_demo_weights

    write_demo_weights(weights_dir)


def demo_env(config: Config) -> Env:
    """An Env over the config's weights folder, with demo weights written if absent."""
    if not any(Path(config.weights_dir).glob("*/demo_*")):
        write_weights(Path(config.weights_dir))
    return Env(config)


def small_default(env: Env, *, steps_c: int = 3, steps_b: int = 2, size: int = 256) -> dict:
    """The shipped default workflow fitted to the demo weights, shrunk to a few steps."""
    from nodes.registry import NODES
    from runtime.workflows import default_workflow

    doc = default_workflow(env, NODES)
    for node in doc["nodes"].values():
        if node["class_type"] == "StageCSampler":
            node["inputs"].update(steps=steps_c, width=size, height=size, seed=1)
            node["ui"]["seed_control"] = "fixed"
        if node["class_type"] == "StageBSampler":
            node["inputs"].update(steps=steps_b, seed=2)
            node["ui"]["seed_control"] = "fixed"
    return doc


def node_id(doc: dict, class_type: str) -> str:
    """The id of the single node of this class in a document."""
    ids = [i for i, n in doc["nodes"].items() if n["class_type"] == class_type]
    assert len(ids) == 1, ids
    return ids[0]


def dump(doc: dict) -> str:
    return json.dumps(doc)


@contextlib.contextmanager
def demo_server(tmp: Path):
    """The real server with the real nodes over demo weights in `tmp`: yields (base URL, Env)."""
    from nodes.registry import NODES
    from tests.server_harness import running_server

    config = tmp_config(tmp)
    env = demo_env(config)
    with running_server(config, NODES, env) as base:
        yield base, env


def loaded_nodes(tmp: Path) -> tuple:
    """Demo weights loaded through the real loader nodes, for tests that call nodes directly.

    Returns (env, ctx, text_encoder, {"stage_c", "stage_b", "stage_a": ModelHandle}).
    """
    import threading

    from engine.schema import RunContext
    from nodes.registry import NODES

    env = demo_env(tmp_config(tmp))
    ctx = RunContext(node_id="1", prompt_id="p", env=env, cancel=threading.Event())
    files = {k: env.weight_files(k)[0] for k in ("stage_c", "stage_b", "stage_a", "text_encoder")}
    (te,) = NODES["LoadTextEncoder"]().run(ctx, files["text_encoder"], "auto")
    models = {k: NODES[f"Load{n}"]().run(ctx, files[k], "auto")[0]
              for k, n in (("stage_c", "StageC"), ("stage_b", "StageB"), ("stage_a", "StageA"))}
    return env, ctx, te, models
