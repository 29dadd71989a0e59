"""Scale-out on Ray (docs/scale-out.md): the server's queue, many worker actors.

``Dispatcher`` replaces the in-process worker thread when the server runs with ``--workers N``
or ``--ray-address``. It keeps the queue discipline of engine/worker.py (pause, order, cancel,
history, events) and leases the next job to an idle actor, preferring the one whose resident
models overlap the job's most (least recently used among equals). A job runs as one streaming
actor call; its events go through the same ``report`` path as in-process, so clients see the
same messages. A worker process that dies mid-job ends that job as an error naming the worker
(no retry: a job that killed one worker would likely kill the next); Ray restarts the actor and
the dispatcher leases to it again once it answers.

Ray is imported here only, and this module only when scale-out is asked for.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.executor import Execution, now_ms
from engine.remote import RemoteWorker
from engine.ray_cluster import RemoteCancel, require_ray, start_ray  # noqa: F401 (re-exported)
from engine.shipping import OutputWriter, collect_inputs
from engine.worker import Requeued, Running, Worker

log = logging.getLogger("cascade.dispatch")
HISTORY_EVENTS = ("execution_start", "execution_cached", "execution_error",
                  "execution_interrupted", "execution_success")
RESTART_WAIT_S = 120.0  # a restarted actor that does not answer by then is reported "lost"
# A job whose worker died before the job reached it goes back to the queue this many times at
# most (arguments that kill every worker on arrival must end as an error, not loop for ever).
MAX_REQUEUES = 3
CLOSE_WAIT_S = 1.0  # at stop: how long the actors get to remove their scratch folders


def weights_of(registry: Any, env: Any) -> Callable[[dict], set]:
    """The job's model set: every path a node's ``weights_used(env, inputs)`` names (the same
    hook admission sizes jobs with); nodes without the hook load nothing we can prefer on."""
    def models(prompt: dict) -> set:
        found = set()
        for node in prompt.values():
            hook = getattr(registry.get(node.get("class_type")), "weights_used", None)
            if not callable(hook):
                continue
            try:
                used = hook(env, dict(node.get("inputs") or {})) or ()
            except Exception:  # an input it cannot read yet: no preference from this node
                continue
            found.update(str(path) for path, *_ in used)
        return found
    return models


@dataclass
class Slot:
    """One actor as the dispatcher sees it."""

    name: str
    actor: Any
    state: str = "starting"  # starting | idle | busy | restarting | lost
    job: Running | None = None
    models: set = field(default_factory=set)  # weights its last jobs loaded (resident, likely)
    last_used: float = 0.0
    jobs_done: int = 0
    info: dict = field(default_factory=dict)


class Dispatcher(Worker):
    """Worker's interface over N Ray actors (see the module docstring)."""

    def __init__(self, store, executor, publish, on_free=None, *, nodes: Callable, config: Any,
                 workers: int, address: str | None = None, job_models: Callable | None = None,
                 worker_env: dict[str, str] | None = None):
        super().__init__(store, executor, publish, on_free)
        self.nodes, self.config, self.count, self.address = nodes, config, workers, address
        self.worker_env = dict(worker_env or {})  # environment variables each actor process starts with
        self.job_models = job_models or (lambda prompt: set())
        self.slots: list[Slot] = []
        self.writer = OutputWriter({"output": config.output_dir, "temp": config.temp_dir})
        self._owns_cluster = False
        self._requeues: dict[str, int] = {}  # prompt_id -> times its worker died before it started

    # Worker keeps one `running` job; here each slot has its own. The newest one stands in.
    @property
    def running(self) -> Running | None:
        jobs = self.running_jobs()
        return jobs[-1] if jobs else None

    @running.setter
    def running(self, value: Running | None) -> None:
        pass  # set by Worker.__init__ only; slots hold the jobs

    def running_jobs(self) -> list[Running]:
        return [s.job for s in list(self.slots) if s.job is not None]

    def describe(self) -> list[dict]:
        return [{"name": s.name, "kind": "ray", "state": s.state,
                 "prompt_id": s.job.prompt_id if s.job else None, "pid": s.info.get("pid"),
                 "host": s.info.get("host"), "jobs_done": s.jobs_done,
                 "models": sorted(s.models)} for s in list(self.slots)]

    # -- control ---------------------------------------------------------------------------------
    def start(self) -> None:
        import ray

        self._owns_cluster = start_ray(self.address, self.count)
        gpus = ray.cluster_resources().get("GPU", 0)
        # One GPU per worker where the cluster has them; else one CPU (tests, CPU boxes).
        resources = {"num_gpus": 1} if gpus >= 1 else {"num_cpus": 1}
        cls = ray.remote(RemoteWorker)
        tag = f"{os.getpid()}-{id(self):x}"
        for i in range(self.count):
            name = f"worker-{i + 1}"
            # max_restarts=-1: Ray restarts a dead worker (its job is not retried: 0 task retries).
            # worker_env: e.g. the allocator's settings as glibc environment variables, read at the
            # process's start, before Ray's own threads allocate (runtime/allocator.py child_env).
            env = {"runtime_env": {"env_vars": self.worker_env}} if self.worker_env else {}
            actor = cls.options(name=f"cascade-{tag}-{name}", max_restarts=-1, max_task_retries=0,
                                max_concurrency=4, **env, **resources).remote(name, self.nodes, self.config)
            self.slots.append(Slot(name, actor))
        for slot in self.slots:
            threading.Thread(target=self._await_ready, args=(slot,), daemon=True).start()
        super().start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
            jobs = self.running_jobs()
        for job in jobs:
            job.cancel.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        while self.running_jobs() and time.monotonic() < deadline:
            time.sleep(0.05)
        for job in self.running_jobs():  # still running: recorded as interrupted
            self.store.interrupt(job.prompt_id, "server stopped while this node ran")
        self._shutdown_actors()

    def _shutdown_actors(self) -> None:
        import ray

        closing = []
        for slot in self.slots:  # their scratch folders go with them
            try:
                closing.append(slot.actor.close.remote())
            except Exception:
                pass
        try:
            ray.wait(closing, num_returns=len(closing), timeout=CLOSE_WAIT_S)
        except Exception:
            pass
        for slot in self.slots:
            try:
                ray.kill(slot.actor, no_restart=True)
            except Exception:
                pass
        if self._owns_cluster:
            ray.shutdown()

    def interrupt(self, prompt_id: str | None = None) -> bool:
        with self._wake:
            jobs = [j for j in self.running_jobs() if prompt_id in (None, j.prompt_id)]
        for job in jobs:
            job.cancel.set()
        return bool(jobs)

    def cancel(self, prompt_id: str) -> str | None:
        with self._wake:
            if self.store.delete_pending([prompt_id]):
                outcome = "removed"
            else:
                job = next((j for j in self.running_jobs() if j.prompt_id == prompt_id), None)
                outcome = None
                if job is not None:
                    job.cancel.set()
                    outcome = "interrupted"
        if outcome == "removed":
            self.changed()
        return outcome

    # -- dispatcher thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stop and self._free is None and (
                        self.paused or not self._has_pending() or not self._idle()):
                    self._wake.wait(1.0)
                if self._stop:
                    return
                free, self._free = self._free, None
                if free is None:
                    try:
                        self._lease()
                    except Exception:  # the store failed (disk full?): retry later
                        log.exception("dispatcher error")
                        self._wake.wait(1.0)
                    continue
            self._apply_free(*free)

    def _idle(self) -> list[Slot]:
        # A restarted actor may answer before its old job is recorded: it waits for _release.
        return [s for s in self.slots if s.state == "idle" and s.job is None]

    def _lease(self) -> None:
        """Take the next job (under the lock) and start it on the best idle slot."""
        idle = self._idle()
        item = self.store.take_next(None)
        if item is None:
            return
        models = self._models(item[2])
        slot = max(idle, key=lambda s: (len(models & s.models), -s.last_used))
        self.store.set_worker(item[1], slot.name)
        extra = item[3]
        client_id = extra.get("client_id") if isinstance(extra, dict) else None
        slot.job = Running(item[1], client_id, RemoteCancel(slot.actor, item[1]), worker=slot.name)
        slot.state, slot.last_used = "busy", time.monotonic()
        slot.models |= models
        threading.Thread(target=self._run_on, args=(slot, item), name=f"cascade-{slot.name}",
                         daemon=True).start()

    def _models(self, prompt: dict) -> set:
        try:
            return set(self.job_models(prompt))
        except Exception:  # no preference is better than no job
            return set()

    def _run_on(self, slot: Slot, item: list) -> None:
        job = slot.job
        try:
            self._run(item, job)
        except Exception:
            log.exception("dispatcher error")
            with self._wake:
                self._release(job)

    def _release(self, job: Running) -> None:
        for slot in self.slots:
            if slot.job is job:
                slot.job = None
                slot.jobs_done += 1
                if slot.state == "busy":
                    slot.state = "idle"
        self._wake.notify_all()

    def _apply_free(self, unload_models: bool, free_memory: bool) -> None:
        for slot in self.slots:
            if unload_models:
                slot.models.clear()
            try:
                slot.actor.free.remote(unload_models, free_memory)
            except Exception:
                pass

    def _await_ready(self, slot: Slot) -> None:
        """Wait for a (re)started actor to answer, then lease to it again."""
        import ray

        deadline = time.monotonic() + RESTART_WAIT_S
        while time.monotonic() < deadline and not self._stop:
            try:
                info = ray.get(slot.actor.info.remote(), timeout=5.0)
            except Exception:
                time.sleep(0.2)
                continue
            with self._wake:
                slot.info, slot.state = info, "idle"
                self._wake.notify_all()
            return
        slot.state = "lost"
        log.error("worker %s did not come back; it takes no more jobs", slot.name)

    # -- one job on one actor ----------------------------------------------------------------------
    def _execute(self, item: list, job: Running, report) -> Execution:
        import ray

        _, prompt_id, prompt, extra_data, outputs = item
        slot = next(s for s in self.slots if s.job is job)
        files = collect_inputs(self.config.input_dir, prompt, self.config.max_body_bytes)
        messages: list = []
        started = False
        stream = slot.actor.run.options(num_returns="streaming").remote(
            prompt_id, prompt, outputs, extra_data, files)
        try:
            for ref in stream:
                kind, *rest = ray.get(ref)
                if kind == "started":
                    started = True
                    continue
                if kind == "done":
                    self._requeues.pop(prompt_id, None)
                    result = rest[0]
                    return Execution(
                        status=result["status"], messages=result["messages"],
                        warnings=result["warnings"],
                        outputs={n: self.writer.rename(slot.name, ui)
                                 for n, ui in result["outputs"].items()})
                event, data, shipped = rest
                if event == "executed":
                    data = dict(data, output=self.writer.place(slot.name, data["output"], shipped))
                if event in HISTORY_EVENTS:
                    messages.append([event, data])
                report(event, data)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            if not started:
                return self._not_started(slot, job, report, exc)
            return self._worker_died(slot, job, messages, report, exc)
        raise RuntimeError(f"worker {slot.name} ended job {prompt_id} without a result")

    def _worker_died(self, slot: Slot, job: Running, messages: list, report,
                     exc: Exception, restarting: bool = False) -> Execution:
        """The actor process died mid-job: the job ends as an error; the actor restarts."""
        log.error("worker %s died while running %s: %s", slot.name, job.prompt_id, exc)
        self._requeues.pop(job.prompt_id, None)
        if not restarting:
            self._restarting(slot)
        error = {"prompt_id": job.prompt_id, "node_id": job.node, "node_type": None,
                 "executed": [], "exception_message":
                     f"worker {slot.name} stopped while running this job (its process died: "
                     "out of memory or killed); the job was not retried",
                 "exception_type": "WorkerDied", "traceback": [], "current_inputs": {},
                 "current_outputs": [], "timestamp": now_ms()}
        report("execution_error", error)
        return Execution(status="error", messages=messages + [["execution_error", error]],
                         error=error)

    def _restarting(self, slot: Slot) -> None:
        """The actor's process died: Ray restarts it empty; lease to it once it answers."""
        with self._wake:
            slot.state, slot.models = "restarting", set()
        self.writer.forget(slot.name)
        threading.Thread(target=self._await_ready, args=(slot,), daemon=True).start()

    def _not_started(self, slot: Slot, job: Running, report, exc: Exception) -> Execution:
        """The actor was dead before the job reached it (killed while idle, or while the job
        was being leased): the job did not fail, so it goes back to its place in the queue. A
        job cancelled meanwhile ends as interrupted; one whose workers keep dying before it
        starts (MAX_REQUEUES) ends as an error."""
        log.warning("worker %s was dead before %s reached it: %s", slot.name, job.prompt_id, exc)
        self._restarting(slot)
        with self._wake:
            tries = self._requeues[job.prompt_id] = self._requeues.get(job.prompt_id, 0) + 1
            if not job.cancel.is_set() and tries <= MAX_REQUEUES \
                    and self.store.requeue(job.prompt_id):
                if slot.job is job:  # under the lock: cancel() now finds the job pending
                    slot.job = None
                self._wake.notify_all()
                requeued = True
            else:
                requeued = False
        if requeued:
            self.changed()
            raise Requeued(job.prompt_id)
        self._requeues.pop(job.prompt_id, None)
        if job.cancel.is_set():
            message = {"prompt_id": job.prompt_id, "node_id": None, "node_type": None,
                       "executed": [], "timestamp": now_ms()}
            report("execution_interrupted", message)
            return Execution(status="interrupted", messages=[["execution_interrupted", message]])
        return self._worker_died(slot, job, [], report, exc, restarting=True)
