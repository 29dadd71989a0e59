"""A job that starts at the moment it is cancelled, or the server stops, is never missed by both.

Each test forces the interleaving that used to lose: the worker takes the job between the
caller's look at it and the caller's action.
"""
import threading
import time

import pytest

from engine.executor import Executor
from engine.store import Store
from engine.worker import Worker
from tests.server_harness import http_json, stub_server, wait_for
from tests.stub_nodes import STUB_NODES, StubEnv, chain_prompt


@pytest.mark.parametrize("first_node_runs", [True, False], ids=["mid-job", "before-first-node"])
def test_cancel_of_a_job_starting_at_that_moment_interrupts_it(tmp_path, first_node_runs):
    """Both interleavings are real: "running" is set when the worker takes the job, so the cancel may
    land before the executor has run any node (a loaded machine) or while one runs."""
    expose: dict = {}
    with stub_server(tmp_path, expose) as (base, env, _):
        from api.common import SERVICES
        svc = expose["app"][SERVICES]
        execute = svc.worker.executor.execute

        def execute_after_cancel(*args, cancel, **kwargs):
            if not first_node_runs:  # hold the executor until the cancel has landed
                cancel.wait(10)
            return execute(*args, cancel=cancel, **kwargs)

        svc.worker.executor.execute = execute_after_cancel
        http_json("POST", base + "/queue", {"pause": True})
        status, reply = http_json("POST", base + "/prompt", {
            "prompt": chain_prompt(value=1, steps=200, delay=0.02), "prompt_id": "a"})
        assert status == 200, reply
        look = svc.store.job

        def job_then_start(prompt_id):
            """The route's look at the job says "pending"; then the worker takes it."""
            seen = look(prompt_id)
            if prompt_id == "a" and seen and seen["state"] == "pending":
                svc.worker.set_paused(False)
                wait_for(lambda: look("a")["state"] == "running")
            return seen

        svc.store.job = job_then_start
        status, reply = http_json("POST", base + "/jobs/a/cancel")
        svc.store.job = look
        # Interrupted as the running job, not removed as a pending one (env.runs may be empty).
        assert status == 200 and reply["cancelled"] is True and reply["state"] == "running", reply
        entry = wait_for(lambda: http_json("GET", base + "/history/a")[1], timeout=20)["a"]
        assert entry["status"]["messages"][-1][0] == "execution_interrupted", entry["status"]
        assert not list((tmp_path / "output").glob("t_*"))  # never saved


def test_stop_while_a_job_is_being_taken_cancels_it_promptly(tmp_path):
    env = StubEnv(tmp_path / "out")
    store = Store(tmp_path / "w.sqlite3")
    worker = Worker(store, Executor(STUB_NODES, env), lambda e, d, c: None)
    store.add("slow", 1, chain_prompt(value=1, steps=100, delay=0.05), {}, ["4"])  # 5 s
    take = store.take_next
    stopper: list[threading.Thread] = []

    def take_during_stop():
        """stop() is called between the worker's "anything pending?" and its take."""
        thread = threading.Thread(target=worker.stop, args=(1.0,))
        thread.start()
        stopper.append(thread)  # published only once started: the test thread joins it as soon as it appears
        deadline = time.monotonic() + 0.5
        while not worker._stop and time.monotonic() < deadline:
            time.sleep(0.01)
        return take()

    store.take_next = take_during_stop
    worker.start()
    wait_for(lambda: stopper)
    stopper[0].join(10)
    # The taken job was cancelled, so the worker ends soon after stop(), well before the job's 5 s
    # (stop's own join gives up after 1 s; on a loaded machine the interrupt may land later).
    worker._thread.join(4)
    assert not worker._thread.is_alive()
    entry = store.history_entry("slow")
    assert entry is not None and entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert store.running() == [] and not list((tmp_path / "out").glob("t_*"))
    store.close()
