"""Shared by ComfyUI's loader classes: files in ComfyUI's model folders, what they hold, parts they lack.

What a file holds is decided by detection (headers only, `runtime.comfy_folders.detected`), never by its
name. Every network is loaded through `env.models` at the official per-stage dtype, keyed by (file, kind,
dtype), so our own loaders and ComfyUI's share one resident module for the same part of the same file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.schema import Node, RunContext
from models.patching import ModelHandle
from runtime import comfy_folders
from runtime.stamps import Stamp
from runtime.stamps import stamp as file_stamp

STAGES = ("stage_c", "stage_b")
CODER_PARTS = ("effnet", "previewer")
_TITLES = {"stage_c": "Stage C", "stage_b": "Stage B", "stage_a": "Stage A", "effnet": "EfficientNet encoder",
           "previewer": "Previewer", "text_encoder": "CLIP-G text encoder"}


class MissingPartError(ValueError, AttributeError):
    """Using a part a file does not hold. An AttributeError too, so hasattr/getattr(…, default) stay quiet."""


class MissingPart:
    """Stands where a file lacks a part (ComfyUI returns None): falsy; any attribute use raises the message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        object.__setattr__(self, "message", message)

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy/pickle protocols probe dunders: plain "absent"
            raise AttributeError(name)
        raise MissingPartError(self.message)

    def __repr__(self) -> str:
        return f"MissingPart({self.message!r})"


# -- files ------------------------------------------------------------------------------------------
def missing_message(env: Any, folder: str, name: Any) -> str:
    """'x' not found in ComfyUI's `folder` folder (its subfolders), and what is there."""
    key = comfy_folders.folder_key(folder) or folder
    where = " or ".join(str(Path(env.weights_dir) / s) for s in comfy_folders.COMFY_FOLDERS.get(key, (folder,)))
    there = env.comfy_files(folder)
    listed = ", ".join(there[:12]) + (f", … ({len(there)} in all)" if len(there) > 12 else "")
    return f"{name!r} is not in the {key} folder ({where}); it holds: {listed or 'no weights files'}"


def lookup(env: Any, folder: str, name: Any) -> Path | None:
    if not isinstance(name, str):
        return None
    try:
        return env.comfy_path(folder, name)
    except ValueError:  # a name the OS cannot represent (NUL): simply not there
        return None


def comfy_file(env: Any, folder: str, name: Any) -> Path:
    path = lookup(env, folder, name)
    if path is None:
        raise FileNotFoundError(missing_message(env, folder, name))
    return path


def kinds_of(path: Path) -> tuple[str, ...]:
    return comfy_folders.detected(path).kinds


def holds(path: Path) -> str:
    """What a file holds, from detection: 'Stage C (tiny), bfloat16, … ; CLIP-G …' or detection's problems."""
    from models.loading import LoadError, detect

    try:
        report = detect(path)
    except (LoadError, OSError) as exc:
        return f"nothing readable ({exc})"
    if report.components:
        return "; ".join(f"{_TITLES.get(c.kind, c.kind)} ({c.preset or 'unknown size'})"
                         + (f" [not loadable: {'; '.join(c.problems)}]" if c.problems else "")
                         for c in report.components)
    return "; ".join(report.problems) or "no Stable Cascade network"


def wrong_file(path: Path, node: str, expected: str) -> str:
    return f"{node}: {path.name} holds {holds(path)}; expected {expected}"


def stage_of(path: Path, node: str, expected: str) -> str:
    """The one diffusion stage in the file; ValueError naming what the file holds otherwise."""
    found = [s for s in STAGES if s in kinds_of(path)]
    if len(found) != 1:
        raise ValueError(wrong_file(path, node, expected))
    return found[0]


def auto_dtype(env: Any, kind: str):
    return env.resolve_dtype(kind, "auto")  # the official per-stage inference dtype (spec §4.4)


def load_part(env: Any, path: Path, kind: str) -> ModelHandle:
    """A handle on one part of a file, read at its first use (a part nothing uses is never read)."""
    return ModelHandle(env.models.load(path, kind, auto_dtype(env, kind), lazy=True))


def stamp(env: Any, folder: str, name: Any) -> Stamp | None:
    """The file stamp (runtime/stamps.py) of a file in a ComfyUI folder, for cache keys; None when absent."""
    path = lookup(env, folder, name)
    return None if path is None else file_stamp(path)


class FileLoader(Node):
    """One file input (`FILE_INPUT`) from ComfyUI folder `FOLDER`; check/fingerprint/weights_used from it."""

    FOLDER = ""
    FILE_INPUT = ""
    EXPECTED = ""  # what the file must hold, for messages

    @classmethod
    def _needed(cls, kinds: tuple[str, ...]) -> list[str]:
        """The kinds this class loads from a file holding `kinds` (empty: the file is wrong)."""
        raise NotImplementedError

    @classmethod
    def check(cls, env: Any, inputs: dict) -> dict[str, str]:
        name = inputs.get(cls.FILE_INPUT)
        if not isinstance(name, str):
            return {}
        path = lookup(env, cls.FOLDER, name)
        if path is None:
            return {cls.FILE_INPUT: missing_message(env, cls.FOLDER, name)}
        if not cls._needed(kinds_of(path)):
            return {cls.FILE_INPUT: wrong_file(path, cls.__name__, cls.EXPECTED)}
        return {}

    @classmethod
    def fingerprint(cls, env: Any, inputs: dict) -> Any:
        return stamp(env, cls.FOLDER, inputs.get(cls.FILE_INPUT))

    @classmethod
    def weights_used(cls, env: Any, inputs: dict) -> list[tuple[Any, Any]] | None:
        """[(path, torch dtype)] of every part this node loads (admission's estimate); None if unknown."""
        path = lookup(env, cls.FOLDER, inputs.get(cls.FILE_INPUT))
        if path is None:
            return None
        return [(path, auto_dtype(env, kind)) for kind in cls._needed(kinds_of(path))]

    def _file(self, ctx: RunContext, name: str) -> tuple[Path, tuple[str, ...]]:
        path = comfy_file(ctx.env, self.FOLDER, name)
        kinds = kinds_of(path)
        if not self._needed(kinds):
            raise ValueError(wrong_file(path, type(self).__name__, self.EXPECTED))
        return path, kinds
