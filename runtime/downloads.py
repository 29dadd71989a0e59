"""Download tasks: the official files by name or set, or any pasted link, each on a worker thread.

A task is one file. Its key is where it lands (official) or its normalised link (pasted), and a
second request for a key being fetched joins the running task (same id), so no two threads ever
write one file. States: queued → running → verifying → done | error | cancelled. A pasted link's kind
is decided from its keys (models.loading.detect) once verified, and the file is moved to that
kind's folder; anything that is not a recognised safetensors file is removed.
"""
from __future__ import annotations

import itertools
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from runtime import hub_fetch as hf
from runtime.weights import KIND_FOLDERS, LORA_FOLDER, OFFICIAL_FILES, OfficialFile

HUB_REPO = "stabilityai/stable-cascade"
# Path inside the hub repo where it differs from the file name.
HUB_PATHS = {"model.bf16.safetensors": "text_encoder/model.bf16.safetensors"}
_COMMON = ("stage_a.safetensors", "model.bf16.safetensors", "effnet_encoder.safetensors",
           "previewer.safetensors")
SETS = {
    "lite": ("stage_c_lite_bf16.safetensors", "stage_b_lite_bf16.safetensors") + _COMMON,
    "full": ("stage_c_bf16.safetensors", "stage_b_bf16.safetensors") + _COMMON,
}
# Folders a pasted file may be moved to, by what its keys hold (ComfyUI's names for the extra kinds).
EXTRA_FOLDERS = {"controlnet": "controlnet", "all-in-one": "checkpoints", "lora": LORA_FOLDER}
FINISHED = ("done", "error", "cancelled")
MAX_FINISHED = 200  # finished tasks kept for GET /api/tasks/{id}; older ones are forgotten


def official(name: str) -> OfficialFile:
    """The official file of that name; DownloadError naming the valid ones otherwise."""
    for o in OFFICIAL_FILES:
        if o.name == name:
            return o
    names = ", ".join(o.name for o in OFFICIAL_FILES)
    raise hf.DownloadError(f"unknown official file {name!r}; known: {names}")


def resolve_request(files: Iterable[str] = (), set_name: str | None = None) -> list[OfficialFile]:
    """The official files named, and those of a set (`lite` | `full`), without repeats."""
    names = list(files)
    if set_name is not None:
        if set_name not in SETS:
            raise hf.DownloadError(f"unknown set {set_name!r}; choose one of {', '.join(SETS)}")
        names += SETS[set_name]
    return [official(n) for n in dict.fromkeys(names)]


@dataclass
class Task:
    """One file's download; `snapshot()` is what GET /api/tasks/{id} returns."""

    id: str
    key: str
    name: str
    state: str = "queued"
    done: int = 0
    total: int | None = None
    error: str | None = None
    path: str | None = None  # where the file landed, relative to the weights folder
    started: float = field(default_factory=time.monotonic)
    _resumed_at: int = 0
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, done: int, total: int | None) -> None:
        if self.state == "queued":
            self.state, self._resumed_at, self.started = "running", done, time.monotonic()
        self.done, self.total = done, total

    @property
    def speed(self) -> float:
        """Bytes a second fetched by this run (bytes resumed from disk do not count)."""
        elapsed = time.monotonic() - self.started
        return (self.done - self._resumed_at) / elapsed if self.state == "running" and elapsed > 0 else 0.0

    def snapshot(self) -> dict:
        return {"id": self.id, "name": self.name, "state": self.state, "bytes_done": self.done,
                "bytes_total": self.total, "speed": round(self.speed, 1), "error": self.error,
                "path": self.path}


class Downloads:
    """Runs download tasks into `weights_dir`, at most `workers` at a time."""

    def __init__(self, weights_dir: Path, *, keep_free: int = hf.KEEP_FREE, workers: int = 2,
                 terminal: bool = False) -> None:
        self.weights_dir = Path(weights_dir)
        self.keep_free, self.terminal = keep_free, terminal
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}
        self._active: dict[str, Task] = {}  # key -> unfinished task
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="download")
        self._ids = itertools.count(1)
        # Partial files are named by content (hub_fetch.Source.part_key), so two keys (an official file and a
        # pasted link to it) can meet on one: each is held by one task from first byte to rename.
        self._part_locks: dict[Path, threading.Lock] = {}

    # -- starting -------------------------------------------------------------------------------
    def start_official(self, files: Iterable[OfficialFile]) -> list[Task]:
        """One task per file (joining any running one for the same destination)."""
        return [self._start(f"official:{o.folder}/{o.name}", o.name, self._run_official, o) for o in files]

    def start_url(self, url: str) -> Task:
        """A task fetching a pasted link (DownloadError at once for a non-http(s) link)."""
        url = hf.normalise_url(url)
        return self._start(f"url:{url}", Path(url.split("?")[0]).name, self._run_url, url)

    def _start(self, key: str, name: str, run, arg) -> Task:
        with self._lock:
            running = self._active.get(key)
            if running is not None:
                return running
            task = Task(f"dl{next(self._ids)}-{secrets.token_hex(4)}", key, name)
            self._tasks[task.id] = task
            self._active[key] = task
            self._forget_old()
        self._pool.submit(self._guarded, task, run, arg)
        return task

    def _forget_old(self) -> None:
        finished = [t for t in self._tasks.values() if t.state in FINISHED]
        for t in finished[:max(0, len(finished) - MAX_FINISHED)]:
            del self._tasks[t.id]

    # -- queries --------------------------------------------------------------------------------
    def active(self, key: str) -> Task | None:
        """The unfinished task for a key (`official:FOLDER/NAME` or `url:URL`), if any."""
        return self._active.get(key)

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def cancel(self, task_id: str) -> Task | None:
        task = self._tasks.get(task_id)
        if task is not None and task.state not in FINISHED:
            task.cancel.set()
        return task

    def wait(self, tasks: Iterable[Task], timeout: float | None = None) -> bool:
        """Block until every task has finished (True) or `timeout` seconds passed (False)."""
        end = None if timeout is None else time.monotonic() + timeout
        for t in tasks:
            while t.state not in FINISHED:
                if end is not None and time.monotonic() > end:
                    return False
                time.sleep(0.02)
        return True

    def close(self) -> None:
        """Cancel what runs (partial files are kept for a resume) and stop the workers."""
        for t in list(self._active.values()):
            t.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- work -----------------------------------------------------------------------------------
    def _guarded(self, task: Task, run, arg) -> None:
        try:
            if task.cancel.is_set():
                raise hf.Cancelled("cancelled")
            task.path = run(task, arg)
            task.state = "done"
        except hf.Cancelled:
            task.state = "cancelled"
        except hf.DownloadError as exc:
            task.error, task.state = str(exc), "error"
        except Exception as exc:  # never leave a task "running" forever; the type says enough
            task.error, task.state = f"download failed: {type(exc).__name__}: {exc}", "error"
        finally:
            with self._lock:
                if self._active.get(task.key) is task:
                    del self._active[task.key]

    def _part_lock(self, source: hf.Source) -> threading.Lock:
        with self._lock:
            return self._part_locks.setdefault(hf.part_path(self.weights_dir, source), threading.Lock())

    def _fetch(self, task: Task, source: hf.Source) -> Path:
        part = hf.part_path(self.weights_dir, source)
        task.total = source.size
        hf.transfer(source, part, keep_free=self.keep_free, progress=task.progress, cancel=task.cancel,
                    terminal=self.terminal)
        task.state = "verifying"
        return part

    def _run_official(self, task: Task, o: OfficialFile) -> str:
        dest = self.weights_dir / o.folder / o.name
        if dest.exists():  # never overwrite what the user has; nothing to do
            task.done = task.total = dest.stat().st_size
            return f"{o.folder}/{o.name}"
        source = hf.hub_source(HUB_REPO, HUB_PATHS.get(o.name, o.name))
        source.name = o.name
        with self._part_lock(source):
            if dest.exists():  # another task fetched it while this one waited
                task.done = task.total = dest.stat().st_size
                return f"{o.folder}/{o.name}"
            hf.place(self._fetch(task, source), dest)
        return f"{o.folder}/{o.name}"

    def _run_url(self, task: Task, url: str) -> str:
        source = hf.url_source(url)
        with self._part_lock(source):
            return self._place_url(task, source)

    def _place_url(self, task: Task, source: hf.Source) -> str:
        # detect() reads only `.safetensors` (and folders/zips): the verified bytes get that suffix,
        # still inside .downloads/, to be looked at.
        part = hf.place(self._fetch(task, source), hf.part_path(self.weights_dir, source).with_suffix(".safetensors"))
        try:
            folder = folder_for(part)
        except hf.DownloadError:
            part.unlink(missing_ok=True)
            raise
        name = source.name if source.name.endswith(".safetensors") else source.name + ".safetensors"
        dest = self.weights_dir / folder / name
        if dest.exists():
            part.unlink(missing_ok=True)
            raise hf.DownloadError(f"{folder}/{name} already exists; the download was removed "
                                   "(delete or rename the existing file first)")
        hf.place(part, dest)
        return f"{folder}/{name}"


def folder_for(path: Path) -> str:
    """The weights subfolder a downloaded file belongs in, from its keys; DownloadError when it holds
    no Stable Cascade network (not safetensors, unreadable, another model family)."""
    from models.loading import detect

    try:
        report = detect(path)
    except Exception as exc:  # a header that cannot be parsed is a file we refuse, not a crash
        raise hf.DownloadError(f"the downloaded file is not a readable safetensors file ({exc}); removed") \
            from None
    kinds = report.kinds
    if len(kinds) == 1 and kinds[0] in KIND_FOLDERS:
        return KIND_FOLDERS[kinds[0]]
    if len(kinds) == 1 and kinds[0] in EXTRA_FOLDERS:
        return EXTRA_FOLDERS[kinds[0]]
    if len(kinds) > 1:
        return EXTRA_FOLDERS["all-in-one"]
    if any("this is a LoRA" in p for p in report.problems):
        return EXTRA_FOLDERS["lora"]
    why = "; ".join(report.problems) or "no Stable Cascade network found"
    raise hf.DownloadError(f"the downloaded file was refused and removed: {why}")
