"""The one worker thread: takes jobs from the durable store, runs them, writes history.

Events go out through ``publish(event, data, client_id)``, called from the worker thread; the
server turns that into WebSocket messages on its own loop (``call_soon_threadsafe``).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from engine.executor import Executor, now_ms
from engine.progress_state import ProgressState
from engine.store import Store, StoreRefused, history_entry, to_json

log = logging.getLogger("cascade.worker")
Publish = Callable[[str, dict, "str | None"], None]
# Events that reach every socket; all others go only to the prompt's client (ComfyUI routing).
BROADCAST = frozenset({"status", "execution_interrupted"})


class Requeued(Exception):
    """Raised by ``_execute`` when the job never started and is back in the queue: nothing
    to record (engine/dispatch.py, a worker that died before the job reached it)."""


@dataclass
class Running:
    """The job being executed and its live progress (read by GET /jobs/{id})."""

    prompt_id: str
    client_id: str | None
    cancel: threading.Event
    node: str | None = None
    value: int = 0
    max: int = 0
    worker: str = "local"  # which worker runs it (a Ray actor's name with --workers)


class Worker:
    """Owns the queue discipline (pause, order) and the worker thread."""

    def __init__(self, store: Store, executor: Executor, publish: Publish,
                 on_free: Callable[[bool], None] | None = None):
        self.store, self.executor, self.publish = store, executor, publish
        self.on_free = on_free
        self._wake = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._free: tuple[bool, bool] | None = None
        self.running: Running | None = None

    # -- control (any thread) ------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cascade-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt the running job and end the thread, waiting at most `timeout` s.

        A node that does not notice the interrupt in time (one long kernel) still has its job
        recorded as interrupted here; the store keeps that first entry if the thread finishes
        later, and the daemon thread dies with the process."""
        with self._wake:  # the worker takes jobs under this lock: it is now idle or `running`
            self._stop = True
            self._wake.notify_all()
            job = self.running
        if job is not None:
            job.cancel.set()
        if self._thread is not None:
            self._thread.join(timeout)
            job = self.running
            if self._thread.is_alive() and job is not None:
                self.store.interrupt(job.prompt_id, "server stopped while this node ran")

    @property
    def paused(self) -> bool:
        return self.store.get_meta("paused", "0") == "1"

    def set_paused(self, paused: bool) -> None:
        self.store.set_meta("paused", "1" if paused else "0")
        self.changed()

    def changed(self) -> None:
        """Wake the worker and broadcast the queue status (after any queue mutation)."""
        with self._wake:
            self._wake.notify_all()
        self.publish("status", self.status(), None)

    def status(self) -> dict:
        pending, running = self.store.counts()
        return {"status": {"exec_info": {"queue_remaining": pending + running}}}

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Cancel the running job (only if it is `prompt_id`, when given)."""
        with self._wake:
            job = self.running
        if job is None or (prompt_id is not None and job.prompt_id != prompt_id):
            return False
        job.cancel.set()
        return True

    def cancel(self, prompt_id: str) -> str | None:
        """Remove `prompt_id` if pending, else interrupt it if running: "removed",
        "interrupted" or None (not queued, or already done).

        Both checks happen under the lock the worker takes jobs under, so a job starting at
        this very moment is interrupted rather than missed by both."""
        with self._wake:
            if self.store.delete_pending([prompt_id]):
                outcome = "removed"
            else:
                job = self.running
                outcome = None
                if job is not None and job.prompt_id == prompt_id:
                    job.cancel.set()
                    outcome = "interrupted"
        if outcome == "removed":
            self.changed()
        return outcome

    def request_free(self, unload_models: bool, free_memory: bool) -> None:
        """Applied by the worker between jobs (or at once when idle)."""
        with self._wake:
            old = self._free or (False, False)
            self._free = (old[0] or unload_models, old[1] or free_memory)
            self._wake.notify_all()

    # -- worker thread ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stop and (self.paused or not self._has_pending()) \
                        and self._free is None:
                    self._wake.wait(1.0)
                if self._stop:
                    return
                free, self._free = self._free, None
                item = None
                if free is None:
                    try:
                        # Taken and marked `running` under the lock, so stop() and cancel() see
                        # a job either still pending or running, never in between.
                        item = self._take()
                    except Exception:  # the store failed (disk full?): retry later
                        log.exception("worker error")
                        self._wake.wait(1.0)
                        continue
            if free is not None:
                self._apply_free(*free)
                continue
            if item is None:
                continue
            try:
                self._run(item, self.running)
            except Exception:  # keep the thread alive whatever happened
                log.exception("worker error")
                self.running = None
                time.sleep(1.0)

    def running_jobs(self) -> list[Running]:
        """Every job being executed now (one at most here; one per worker with --workers)."""
        job = self.running
        return [] if job is None else [job]

    def running_job(self, prompt_id: str) -> Running | None:
        return next((j for j in self.running_jobs() if j.prompt_id == prompt_id), None)

    def describe(self) -> list[dict]:
        """The workers for /system_stats: name, kind, state (idle/busy) and the running job."""
        job = self.running
        return [{"name": "local", "kind": "in-process", "state": "idle" if job is None else "busy",
                 "prompt_id": None if job is None else job.prompt_id}]

    def _take(self) -> list | None:
        item = self.store.take_next()
        if item is not None:
            extra_data = item[3]
            client_id = extra_data.get("client_id") if isinstance(extra_data, dict) else None
            self.running = Running(item[1], client_id, threading.Event())
        return item

    def _has_pending(self) -> bool:
        return self.store.counts()[0] > 0

    def _apply_free(self, unload_models: bool, free_memory: bool) -> None:
        if free_memory:
            self.executor.reset()
        if self.on_free is not None and (unload_models or free_memory):
            try:
                self.on_free(unload_models)
            except Exception:  # freeing memory must never kill the worker
                pass

    def _run(self, item: list, job: Running) -> None:
        number, prompt_id, prompt, extra_data, outputs = item
        client_id = job.client_id
        self.publish("status", self.status(), None)
        nodes = ProgressState(prompt_id)

        def report(event: str, data: dict) -> None:
            if event == "executing":
                job.node, job.value, job.max = data["node"], 0, 0
            elif event == "progress":
                job.value, job.max = data["value"], data["max"]
            state = nodes.update(event, data)
            # The map's last word (finished/error) comes before the run's end, as ComfyUI's.
            if state is not None and event.startswith("execution_"):
                self.publish("progress_state", state, client_id)
            self.publish(event, data, None if event in BROADCAST else client_id)
            if state is not None and not event.startswith("execution_"):
                self.publish("progress_state", state, client_id)

        try:
            run = self._execute(item, job, report)
            entry = history_entry(item, run.outputs, run.status, run.messages, run.warnings)
        except Requeued:
            return
        except Exception as exc:  # an engine bug: record it, keep serving
            entry = self._error_entry(item, None, str(exc), type(exc).__name__, client_id)
        with self._wake:  # cancel() sees the job running or done, never done-but-running
            try:
                self._finish(prompt_id, entry)  # history first: the null "executing" = "fetch it"
            except StoreRefused as exc:  # an output holds NaN/Infinity: an error naming the node
                bad = next((nid for nid, ui in entry["outputs"].items() if not _fits_json(ui)), "?")
                self._finish(prompt_id, self._error_entry(
                    item, None if bad == "?" else bad, f"output of node {bad} cannot be stored: {exc}",
                    "ValueError", client_id))
            self._release(job)
        self.publish("executing", {"node": None, "prompt_id": prompt_id}, client_id)
        self.publish("status", self.status(), None)

    def _execute(self, item: list, job: Running, report: Callable[[str, dict], None]):
        """Run the job here (engine/dispatch.py runs it on a Ray actor instead)."""
        _, prompt_id, prompt, extra_data, outputs = item
        return self.executor.execute(prompt, outputs, prompt_id=prompt_id, cancel=job.cancel,
                                     report=report, extra_data=extra_data)

    def _release(self, job: Running) -> None:
        """The job's end is recorded (called under the lock): the worker is free again."""
        self.running = None

    def _error_entry(self, item: list, node_id: str | None, message: str, exc_type: str,
                     client_id: str | None) -> dict:
        """Publish an ``execution_error`` for the job and return its history entry."""
        msg = {"prompt_id": item[1], "node_id": node_id, "node_type": None, "executed": [],
               "exception_message": message, "exception_type": exc_type, "traceback": [],
               "current_inputs": {}, "current_outputs": [], "timestamp": now_ms()}
        self.publish("execution_error", msg, client_id)
        return history_entry(item, {}, "error", [["execution_error", msg]])

    def _finish(self, prompt_id: str, entry: dict) -> None:
        """Write history, retrying while the store fails (disk full?) so the job never stays
        "running" for ever; on stop it is left running and recovered as interrupted."""
        while True:
            try:
                self.store.finish(prompt_id, entry)
                return
            except StoreRefused:  # the entry itself cannot be stored: retrying will not help
                raise
            except Exception:
                log.exception("could not record the end of %s; retrying", prompt_id)
                with self._wake:
                    if self._stop:
                        return
                    self._wake.wait(1.0)


def _fits_json(value: object) -> bool:
    try:
        to_json(value)
        return True
    except StoreRefused:
        return False
