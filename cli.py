"""Headless runner: execute a workflow (document, API prompt or PNG with one embedded) without a browser.

    python cli.py workflow.json [--set NODE.INPUT=VALUE ...] [--weights DIR] [--output DIR] [--demo]

NODE is a node id, a node title or a class_type that occurs once; VALUE is parsed as JSON when it can
be (numbers, true/false, lists), else taken as a string. Without a file the default workflow runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Sequence

from PIL import Image
from tqdm import tqdm

from config import Config, build_arg_parser
from engine.executor import Executor
from engine.graph import validate_prompt
from engine.workflow import document_to_prompt, is_document


def read_workflow(path: Path) -> dict:
    """A workflow document or API prompt from a .json file or from a PNG's `workflow`/`prompt` chunks."""
    if path.suffix.lower() == ".png":
        with Image.open(path) as img:
            text = img.text if hasattr(img, "text") else {}
        raw = text.get("workflow") or text.get("prompt")
        if raw is None:
            raise ValueError(f"{path} has no embedded workflow or prompt")
        return json.loads(raw)
    return json.loads(path.read_text(encoding="utf-8"))


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _find_node(nodes: dict, ref: str) -> str:
    if ref in nodes:
        return ref
    dicts = {i: n for i, n in nodes.items() if isinstance(n, dict)}
    by_title = [i for i, n in dicts.items()
                if ((n.get("ui") or {}).get("title") or (n.get("_meta") or {}).get("title")) == ref]
    by_type = [i for i, n in dicts.items() if n.get("class_type") == ref]
    for matches in (by_title, by_type):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ValueError(f"--set: '{ref}' matches nodes {', '.join(matches)}; use a node id")
    raise ValueError(f"--set: no node with id, title or class_type '{ref}'")


def _check_input(node_id: str, node: dict, name: str, registry: dict | None) -> None:
    """An unknown input name is an error listing the node's inputs (a typo must not be run and saved).

    The CLI is strict; the HTTP API stays lenient about extra inputs, as ComfyUI is, because clients
    send their own bookkeeping keys there.
    """
    cls = (registry or {}).get(node.get("class_type"))
    if cls is None:
        return  # unknown class: validation reports it with the node id
    names = [i.name for i in cls.INPUTS]
    if name not in names:
        raise ValueError(f"--set: node {node_id} ({node['class_type']}) has no input '{name}'; "
                         f"its inputs are: {', '.join(names)}")


def apply_sets(workflow: dict, sets: Sequence[str], registry: dict | None = None) -> dict:
    """Apply NODE.INPUT=VALUE overrides in place (document or API prompt) and return it.

    Raises ValueError for a malformed item, an unknown node, or (given the registry) an input the
    node does not have.
    """
    nodes = workflow.get("nodes") if is_document(workflow) else workflow
    if not isinstance(nodes, dict):
        raise ValueError("--set: the workflow has no nodes")
    for item in sets:
        target, sep, value = item.partition("=")
        ref, dot, name = target.rpartition(".")
        if not sep or not dot or not ref or not name:
            raise ValueError(f"--set expects NODE.INPUT=VALUE, got {item!r}")
        node_id = _find_node(nodes, ref)
        node = nodes[node_id]
        if not isinstance(node, dict):
            raise ValueError(f"--set: node {node_id} is not a node object")
        _check_input(node_id, node, name, registry)
        node.setdefault("inputs", {})[name] = _parse_value(value)
    return workflow


def build_parser() -> argparse.ArgumentParser:
    """The server's argument parser plus the positional workflow file."""
    parser = build_arg_parser()
    parser.prog, parser.description = "cli.py", "Run a Cascade Studio workflow headless."
    parser.add_argument("workflow", nargs="?", default=None,
                        help="workflow .json (document or API prompt) or a PNG saved by SaveImage; "
                             "default: the shipped default workflow")
    return parser


class _Progress:
    """Turns executor events into tqdm bars (one per running node) and collects saved images."""

    def __init__(self, prompt: dict, config: Config, stream) -> None:
        self.prompt, self.config, self.stream = prompt, config, stream
        self.bar: tqdm | None = None
        self.images: list[Path] = []

    def __call__(self, event: str, data: dict) -> None:
        if event == "executing":
            self.close()
        elif event == "progress":
            if self.bar is None:
                node = self.prompt.get(str(data.get("node")), {})
                self.bar = tqdm(total=data["max"], desc=node.get("class_type", "node"), file=self.stream,
                                leave=True, dynamic_ncols=True)
            self.bar.update(max(0, data["value"] - self.bar.n))
        elif event == "executed":
            for item in (data.get("output") or {}).get("images", []):
                root = self.config.output_dir if item.get("type") == "output" else self.config.temp_dir
                self.images.append(Path(root) / item.get("subfolder", "") / item["filename"])
        elif event == "warning":
            self.close()
            print(f"warning ({data.get('node_type')} #{data.get('node_id')}): {data.get('message')}",
                  file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_workflow(workflow: dict, config: Config, env: Any, registry: dict, *, stream=None) -> tuple[int, list[Path]]:
    """Validate and execute a workflow through the engine's executor; returns (exit code, image paths)."""
    stream = stream or sys.stderr
    if is_document(workflow):
        prompt, extra = document_to_prompt(workflow, registry), {"extra_pnginfo": {"workflow": workflow}}
    else:
        prompt, extra = workflow, {}
    checked = validate_prompt(prompt, registry, env)
    if not checked.ok:
        print(f"invalid workflow: {checked.error['message']}\n{checked.error['details']}", file=stream)
        for nid, info in checked.node_errors.items():
            for reason in info["errors"]:
                print(f"  node {nid} ({info['class_type']}): {reason['message']}: {reason['details']}", file=stream)
        return 2, []
    progress = _Progress(checked.prompt, config, stream)
    cancel = threading.Event()
    try:
        result = Executor(registry, env).execute(checked.prompt, checked.outputs, prompt_id=str(uuid.uuid4()),
                                                 cancel=cancel, report=progress, extra_data=extra)
    except KeyboardInterrupt:
        cancel.set()
        progress.close()
        print("interrupted", file=stream)
        return 130, progress.images
    progress.close()
    if result.status != "success":
        err = result.error or {}
        print(f"{result.status}: node {err.get('node_id')} ({err.get('node_type')}): "
              f"{err.get('exception_message', '')}", file=stream)
        return 1, progress.images
    for path in progress.images:
        print(path)
    return 0, progress.images


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `python cli.py ...` and `python server.py --run ...`."""
    from runtime import allocator
    from runtime.env import Env
    from nodes.registry import NODES
    from runtime.workflows import default_workflow, fit_to_weights

    allocator.tune()  # as the server does: large tensors from the heap (runtime/allocator.py)

    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    config = Config.from_namespace(args, os.environ)
    env = Env(config)
    source = args.workflow or args.run
    try:
        if source is None:
            workflow = default_workflow(env, NODES)
        else:
            workflow = read_workflow(Path(source))
            if config.demo and is_document(workflow):
                workflow = fit_to_weights(workflow, env, NODES, demo=True)
        apply_sets(workflow, args.set or [], NODES)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    code, _ = run_workflow(workflow, config, env, NODES)
    return code


if __name__ == "__main__":
    sys.exit(main())
