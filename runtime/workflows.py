"""The shipped default workflow, with loader file names fitted to the weights actually present."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Mapping


DEFAULT_WORKFLOW = Path(__file__).resolve().parent.parent / "web" / "workflows" / "default.json"
DEMO_SIZE = 256  # demo weights are random: a small image shows the whole flow in seconds


def load_default() -> dict:
    """The default workflow document exactly as shipped."""
    return json.loads(DEFAULT_WORKFLOW.read_text(encoding="utf-8"))


def _loader_kind(registry: Mapping[str, type], class_type: Any) -> str | None:
    """The model kind a node class loads from its `file` input (our loaders carry KIND), else None."""
    cls = registry.get(class_type) if isinstance(class_type, str) else None
    kind = getattr(cls, "KIND", None)
    names = {getattr(i, "name", None) for i in getattr(cls, "INPUTS", ())}
    return kind if isinstance(kind, str) and kind and "file" in names else None


def fit_to_weights(document: dict, env: Any, registry: Mapping[str, type], *, demo: bool | None = None) -> dict:
    """A copy whose loaders name files that exist: demo files in demo mode, else any file of that kind.

    A named file that exists is kept (outside demo mode). Demo mode also shrinks the image size.
    `registry` maps class_type to node class; loader classes are found by their KIND and `file` input.
    """
    demo = bool(getattr(env.config, "demo", False)) if demo is None else demo
    doc = copy.deepcopy(document)
    for node in doc.get("nodes", {}).values():
        kind = _loader_kind(registry, node.get("class_type"))
        if kind is None:
            if demo and node.get("class_type") == "StageCSampler":
                node["inputs"].update(width=DEMO_SIZE, height=DEMO_SIZE)
            continue
        files = env.weight_files(kind)
        current = node["inputs"].get("file")
        demo_files = [f for f in files if Path(f).name.startswith("demo_")]
        real_files = [f for f in files if f not in demo_files]
        if demo and demo_files:
            # `canny.safetensors` → `demo_canny.safetensors` when there is one (a kind may have several demo files)
            stem = Path(current).stem if isinstance(current, str) else ""
            named = [f for f in demo_files if stem and Path(f).stem == f"demo_{stem}"]
            node["inputs"]["file"] = (named or demo_files)[0]
        elif current not in files and (real_files or demo_files):
            node["inputs"]["file"] = (real_files or demo_files)[0]
    return doc


def default_workflow(env: Any, registry: Mapping[str, type]) -> dict:
    """What the editor opens with: the shipped default fitted to this weights folder (and --demo)."""
    return fit_to_weights(load_default(), env, registry)


def shipped_workflow(name: str, env: Any, registry: Mapping[str, type]) -> dict | None:
    """A shipped example (`web/workflows/<name>.json`) fitted like the default; None if there is none.

    `name` is a bare file stem (no folders): the caller has checked it."""
    path = DEFAULT_WORKFLOW.parent / f"{name}.json"
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        return None
    return fit_to_weights(json.loads(path.read_text(encoding="utf-8")), env, registry)
