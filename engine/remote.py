"""The Ray side of scale-out: one actor = one worker process with its own executor and models.

The actor never touches the server's folders: it runs jobs in a scratch folder of its own
(output/, temp/, input/ under a fresh temporary directory), receives the job's input files as
bytes and sends every file an output node wrote back as bytes with the ``executed`` event that
names it. Events stream back through a Ray streaming generator (``num_returns="streaming"``):
one actor call per job, events in order, back-pressure from Ray's generator window.

This module imports no Ray: engine/dispatch.py wraps ``RemoteWorker`` with ``ray.remote``.
Stream items (tuples, pickled by Ray):
  ``("started", pid)``  first: the job reached a live worker (before this, a death is not its fault)
  ``("event", event, data, files)``  files: ``{(type, subfolder, filename): bytes}`` (executed only)
  ``("done", {"status", "outputs", "messages", "warnings"})``
"""
from __future__ import annotations

import hashlib
import os
import queue
import shutil
import socket
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.executor import Executor

# ui entries naming a file ({"filename", "subfolder", "type"}) whose type is one of these are
# shipped; "input" files already live on the server.
SHIPPED_TYPES = ("output", "temp")


def file_refs(ui: Any) -> Iterator[dict]:
    """Every ``{"filename", "subfolder", "type"}`` dict inside a node's ui (images, gifs, ...)."""
    if not isinstance(ui, dict):
        return
    for value in ui.values():
        for item in value if isinstance(value, list) else ():
            if isinstance(item, dict) and isinstance(item.get("filename"), str) \
                    and item.get("type") in SHIPPED_TYPES:
                yield item


class RemoteWorker:
    """One worker: builds the node registry and environment with `nodes(config)` in its process,
    with the config's output/temp/input/data folders moved into its scratch folder."""

    def __init__(self, name: str, nodes: Callable, config: Any):
        self.name = name
        # Named after the server's data folder (one server per folder) and the worker, so a
        # restarted actor or the next server removes what a killed process left behind.
        prefix = f"cascade-{_tag(config.data_dir)}-{name}-"
        _remove_leftovers(Path(tempfile.gettempdir()), prefix)
        self.scratch = Path(tempfile.mkdtemp(prefix=prefix))
        self.dirs = {kind: self.scratch / kind for kind in ("output", "temp", "input", "user")}
        for folder in self.dirs.values():
            folder.mkdir()
        self.config = config.with_overrides(
            output_dir=self.dirs["output"], temp_dir=self.dirs["temp"],
            input_dir=self.dirs["input"], data_dir=self.dirs["user"])
        self.registry, self.env = nodes(self.config)
        self.executor = Executor(self.registry, self.env)
        self._lock = threading.Lock()
        self._cancels: dict[str, threading.Event] = {}
        self._early: set[str] = set()  # cancelled before their run() arrived
        self._shipped: set[tuple] = set()
        self._running = False
        self._pending_free: tuple[bool, bool] | None = None

    def info(self) -> dict:
        """Who this worker is (for /system_stats); also the liveness probe after a restart."""
        return {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
                "scratch": str(self.scratch)}

    def cancel(self, prompt_id: str) -> bool:
        """Interrupt `prompt_id` (runs on another actor thread while run() streams)."""
        with self._lock:
            event = self._cancels.get(prompt_id)
            if event is None:
                if len(self._early) > 1000:  # ids that never came; forget the oldest lot
                    self._early.clear()
                self._early.add(prompt_id)
                return False
        event.set()
        return True

    def free(self, unload_models: bool, free_memory: bool) -> None:
        """POST /free: applied now when idle, else when the running job ends (as in-process)."""
        with self._lock:
            if self._running:
                old = self._pending_free or (False, False)
                self._pending_free = (old[0] or unload_models, old[1] or free_memory)
                return
        self._free_now(unload_models, free_memory)

    def _free_now(self, unload_models: bool, free_memory: bool) -> None:
        if free_memory:
            self.executor.reset()
        hook = getattr(self.env, "free_memory", None)
        if callable(hook) and (unload_models or free_memory):
            hook(unload_models)

    def run(self, prompt_id: str, prompt: dict, outputs: list, extra_data: dict,
            inputs: dict[str, bytes]) -> Iterator[tuple]:
        """Execute one job: ``("started", pid)``, then its events as they happen, then its
        result."""
        cancel = threading.Event()
        with self._lock:
            self._running = True
            self._cancels[prompt_id] = cancel
            if prompt_id in self._early:
                self._early.discard(prompt_id)
                cancel.set()
        events: queue.Queue = queue.Queue()
        thread = None

        def report(event: str, data: dict) -> None:
            files = self._files_of(data.get("output")) if event == "executed" else {}
            events.put(("event", event, data, files))

        def work() -> None:
            try:
                run = self.executor.execute(prompt, outputs, prompt_id=prompt_id, cancel=cancel,
                                            report=report, extra_data=extra_data)
                events.put(("done", {"status": run.status, "outputs": run.outputs,
                                     "messages": run.messages, "warnings": run.warnings}))
            except BaseException as exc:  # an engine bug: the server records it as an error
                events.put(("raise", exc))

        try:
            # The server requeues a job whose worker died before this item (the job never ran).
            yield ("started", os.getpid())
            self._write_inputs(inputs)
            thread = threading.Thread(target=work, name=f"{self.name}-job", daemon=True)
            thread.start()
            while True:
                item = events.get()
                if item[0] == "raise":
                    raise item[1]
                yield item
                if item[0] == "done":
                    return
        finally:
            if thread is not None:
                thread.join()
            with self._lock:
                self._cancels.pop(prompt_id, None)
                self._running, pending, self._pending_free = False, self._pending_free, None
            if pending is not None:
                self._free_now(*pending)

    def _write_inputs(self, inputs: dict[str, bytes]) -> None:
        """Put the job's input files in place; unchanged files keep their mtime (cache keys)."""
        root = self.dirs["input"].resolve()
        for rel, data in inputs.items():
            path = (root / rel).resolve()
            if not path.is_relative_to(root):  # the server only sends paths inside input/
                continue
            if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def _files_of(self, ui: Any) -> dict[tuple, bytes]:
        """Bytes of the files a ui names that were not sent before. A sent file is truncated,
        not deleted: its name stays taken, so the nodes' counters never reuse it and a cached
        ui that names it again maps to the server's copy."""
        files = {}
        for ref in file_refs(ui):
            key = (ref["type"], ref.get("subfolder") or "", ref["filename"])
            root = self.dirs[ref["type"]].resolve()
            path = (root / key[1] / key[2]).resolve()
            if key in self._shipped or not path.is_relative_to(root) or not path.is_file():
                continue
            files[key] = path.read_bytes()
            self._shipped.add(key)
            os.truncate(path, 0)
        return files

    def close(self) -> None:
        """Remove the scratch folder (the dispatcher calls it at a clean stop)."""
        shutil.rmtree(self.scratch, ignore_errors=True)


def _tag(data_dir: Any) -> str:
    return hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]


def _remove_leftovers(root: Path, prefix: str) -> None:
    """Delete `root/prefix*` scratch folders of dead predecessors: only real folders (not links)
    that this user owns, as mkdtemp made them."""
    try:
        names = [n for n in os.listdir(root) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        path = root / name
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            shutil.rmtree(path, ignore_errors=True)
