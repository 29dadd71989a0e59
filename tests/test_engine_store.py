"""SQLite queue/history: order, front, cancel, clear, cap, restart recovery; the worker thread."""
import threading

from engine.executor import Executor
from engine.store import Store, history_entry
from engine.worker import Worker
from tests.server_harness import wait_for
from tests.stub_nodes import STUB_NODES, StubEnv

PROMPT = {"1": {"class_type": "Const", "inputs": {"value": 1}},
          "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}}


def add(store, pid, front=False, number=None):
    store.add(pid, number if number is not None else store.next_number(front), PROMPT,
              {"client_id": "c"}, ["2"])


def ids(items):
    return [item[1] for item in items]


def test_pending_order_front_and_move(tmp_path):
    store = Store(tmp_path / "q.sqlite3")
    for pid in "abc":
        add(store, pid)
    add(store, "f", front=True)
    assert ids(store.pending()) == ["f", "a", "b", "c"]
    assert store.pending()[1] == [1, "a", PROMPT, {"client_id": "c"}, ["2"]]
    assert store.move_to_front("c") and not store.move_to_front("zzz")
    assert ids(store.pending()) == ["c", "f", "a", "b"]
    assert store.job("a")["queue_position"] == 2
    assert store.delete_pending(["a"]) == 1
    assert ids(store.pending()) == ["c", "f", "b"]
    store.clear_pending()
    assert store.pending() == [] and store.counts() == (0, 0)


def test_restart_keeps_pending_and_marks_running_interrupted(tmp_path):
    path = tmp_path / "q.sqlite3"
    store = Store(path)
    add(store, "run")
    add(store, "wait1")
    add(store, "wait2")
    item = store.take_next()
    assert item[1] == "run" and ids(store.running()) == ["run"]
    store.finish("x-unknown", {})  # no such job: harmless
    del store  # simulated crash: no close, no finish

    reopened = Store(path)
    assert ids(reopened.pending()) == ["wait1", "wait2"]
    assert reopened.running() == []
    entry = reopened.history_entry("run")
    assert entry["status"]["status_str"] == "error" and not entry["status"]["completed"]
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert entry["prompt"][1] == "run"


def test_history_survives_restart_with_output_references(tmp_path):
    path = tmp_path / "q.sqlite3"
    store = Store(path)
    add(store, "a")
    item = store.take_next()
    outputs = {"2": {"images": [{"filename": "x.png", "subfolder": "", "type": "output"}]}}
    store.finish("a", history_entry(item, outputs, "success", [["execution_success", {}]]))
    store.close()
    entry = Store(path).history_entry("a")
    assert entry["outputs"] == outputs and entry["status"]["status_str"] == "success"
    assert entry["meta"]["2"]["node_id"] == "2"


def test_history_cap_paging_and_delete(tmp_path):
    store = Store(tmp_path / "q.sqlite3", history_max=3)
    for i in range(5):
        add(store, f"j{i}")
        item = store.take_next()
        store.finish(item[1], history_entry(item, {}, "success", []))
    assert list(store.history()) == ["j2", "j3", "j4"]  # oldest evicted
    assert list(store.history(max_items=2)) == ["j3", "j4"]  # newest N
    assert list(store.history(max_items=1, offset=1)) == ["j3"]
    assert list(store.history(max_items=1, offset=0)) == ["j2"]  # explicit offset: from oldest
    store.delete_history(["j3"])
    assert list(store.history()) == ["j2", "j4"]
    store.clear_history()
    assert store.history() == {}


def make_worker(tmp_path, env):
    store = Store(tmp_path / "w.sqlite3")
    events = []
    worker = Worker(store, Executor(STUB_NODES, env), lambda e, d, c: events.append((e, d, c)),
                    on_free=env.free_memory)
    return store, worker, events


def test_worker_runs_jobs_pause_resume_and_writes_history_before_end_marker(tmp_path):
    env = StubEnv(tmp_path / "out")
    store, worker, events = make_worker(tmp_path, env)
    worker.set_paused(True)
    worker.start()
    try:
        add(store, "a")
        add(store, "b")
        worker.changed()
        assert not wait_for_quiet(lambda: store.history_entry("a"), 0.3)  # paused: nothing runs
        worker.set_paused(False)
        wait_for(lambda: store.history_entry("b"))
        end = [i for i, (e, d, c) in enumerate(events) if e == "executing" and d["node"] is None]
        assert len(end) == 2
        assert events[end[0]][1]["prompt_id"] == "a" and events[end[0]][2] == "c"
        assert [e for e, _, _ in events].count("execution_success") == 2
    finally:
        worker.stop()


def test_worker_interrupt_only_matching_prompt_and_free(tmp_path):
    env = StubEnv(tmp_path / "out")
    store, worker, events = make_worker(tmp_path, env)
    slow = {"1": {"class_type": "Const", "inputs": {"value": 1}},
            "2": {"class_type": "Slow", "inputs": {"x": ["1", 0], "steps": 500, "delay": 0.01,
                                                   "preview": False}},
            "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}
    store.add("s", 1, slow, {}, ["3"])
    worker.start()
    try:
        wait_for(env.started.is_set)
        assert not worker.interrupt("other")
        assert worker.interrupt("s")
        entry = wait_for(lambda: store.history_entry("s"))
        assert entry["status"]["messages"][-1][0] == "execution_interrupted"
        worker.request_free(unload_models=True, free_memory=True)
        wait_for(lambda: env.freed == [True])
        assert len(worker.executor.cache) == 0
    finally:
        worker.stop()


def wait_for_quiet(predicate, seconds):
    """True if `predicate` becomes truthy within `seconds` (used to assert that it does not)."""
    done = threading.Event()
    try:
        wait_for(predicate, timeout=seconds)
        done.set()
    except TimeoutError:
        pass
    return done.is_set()


def test_non_json_ui_is_stored_as_text_and_worker_survives(tmp_path):
    from pathlib import Path as P

    from engine.schema import Node, Result

    class OddOutput(Node):
        OUTPUT_NODE = True

        def run(self, ctx):
            return Result(ui={"path": [P("/x/y")]})

    env = StubEnv(tmp_path / "out")
    store = Store(tmp_path / "odd.sqlite3")
    worker = Worker(store, Executor({**STUB_NODES, "Odd": OddOutput}, env), lambda e, d, c: None)
    store.add("odd", 1, {"1": {"class_type": "Odd", "inputs": {}}}, {}, ["1"])
    add(store, "next")
    worker.start()
    try:
        assert wait_for(lambda: store.history_entry("odd"))["outputs"] == {"1": {"path": ["/x/y"]}}
        assert wait_for(lambda: store.history_entry("next"))["status"]["completed"]
    finally:
        worker.stop()


def test_take_next_after_failed_finish_hands_out_the_next_job(tmp_path):
    store = Store(tmp_path / "q.sqlite3")
    add(store, "a")
    add(store, "b")
    assert store.take_next()[1] == "a"  # its finish "fails": a stays running
    assert store.take_next()[1] == "b"
    assert store.take_next() is None
    assert ids(store.running()) == ["a", "b"]


def test_duplicate_id_is_refused_by_the_insert(tmp_path):
    import pytest

    from engine.store import DuplicateJob, StoreRefused
    store = Store(tmp_path / "q.sqlite3")
    add(store, "a")
    with pytest.raises(DuplicateJob):
        add(store, "a")
    assert issubclass(DuplicateJob, StoreRefused) and ids(store.pending()) == ["a"]


def test_non_finite_or_huge_values_are_never_stored(tmp_path):
    import pytest

    from engine.store import StoreRefused
    store = Store(tmp_path / "q.sqlite3")
    for number in (float("nan"), float("inf"), -float("inf"), 10 ** 400, 2.0 ** 60):
        with pytest.raises(StoreRefused):
            store.add("n", number, PROMPT, {}, ["2"])
    with pytest.raises(StoreRefused):
        store.add("x", 1, PROMPT, {"v": float("nan")}, ["2"])
    assert store.pending() == []
    add(store, "a")
    item = store.take_next()
    with pytest.raises(StoreRefused):
        store.finish("a", history_entry(item, {"2": {"v": [float("inf")]}}, "success", []))
    assert ids(store.running()) == ["a"] and store.history() == {}


def test_recovered_job_keeps_an_integer_number(tmp_path):
    path = tmp_path / "q.sqlite3"
    store = Store(path)
    add(store, "run", number=78)
    store.take_next()
    del store  # crash while running
    entry = Store(path).history_entry("run")
    assert entry["prompt"][0] == 78 and type(entry["prompt"][0]) is int


def test_every_end_of_a_job_is_announced(tmp_path):
    ended = []
    store = Store(tmp_path / "q.sqlite3", on_end=lambda *a: ended.append(a[:2]))
    for pid in "abcde":
        add(store, pid)
    item = store.take_next()
    store.finish("a", history_entry(item, {}, "success", []))
    store.finish("a", history_entry(item, {}, "error", []))  # a late second finish: ignored
    store.delete_pending(["b", "zzz"])
    store.clear_pending()
    assert ended == [("a", "done"), ("b", "cancelled"), ("c", "cancelled"), ("d", "cancelled"),
                     ("e", "cancelled")]
    assert store.history_entry("a")["status"]["completed"]


def _garbage(path):
    path.write_bytes(b"this is not a database" * 100)


def _truncated(path):
    store = Store(path)
    for i in range(300):
        store.add(f"j{i}", i + 1, {"x": "y" * 500}, {}, [])
    store.close()
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])


def _folder(path):
    path.mkdir()
    (path / "inside.txt").write_text("kept")


def test_damaged_database_is_moved_aside_and_a_fresh_one_started(tmp_path, caplog):
    import logging
    for damage in (_garbage, _truncated, _folder):
        folder = tmp_path / damage.__name__
        folder.mkdir()
        path = folder / "q.sqlite3"
        damage(path)
        before = path.read_bytes() if path.is_file() else None
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cascade.store"):
            store = Store(path)
        assert store.pending() == [] and store.history() == {}
        add(store, "new")
        assert ids(store.pending()) == ["new"]
        aside = [p for p in folder.iterdir() if ".damaged-" in p.name and not
                 p.name.endswith(("-wal", "-shm"))]
        assert len(aside) == 1, damage.__name__
        if before is None:
            assert (aside[0] / "inside.txt").read_text() == "kept"
        else:
            assert aside[0].read_bytes() == before
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and str(path) in lines[0] and str(aside[0]) in lines[0]
        store.close()


def test_worker_retries_a_failed_finish_and_never_runs_a_job_twice(tmp_path):
    class FlakyStore(Store):
        failures = 1

        def finish(self, prompt_id, entry):
            if self.failures:
                self.failures -= 1
                raise OSError("disk full")
            super().finish(prompt_id, entry)

    env = StubEnv(tmp_path / "out")
    store = FlakyStore(tmp_path / "f.sqlite3")
    worker = Worker(store, Executor(STUB_NODES, env), lambda e, d, c: None)
    add(store, "a")
    store.add("b", store.next_number(), {"1": {"class_type": "Const", "inputs": {"value": 2}},
                                          "2": {"class_type": "Show", "inputs": {"x": ["1", 0]}}},
              {}, ["2"])
    worker.start()
    try:
        wait_for(lambda: store.history_entry("b"))
        assert store.history_entry("a")["status"]["completed"]
        assert [name for _, name in env.runs].count("Show") == 2  # a once, b once
        assert store.running() == []
    finally:
        worker.stop()


def test_unstorable_node_output_becomes_a_node_error(tmp_path):
    from engine.schema import Node, Result

    class NaNOutput(Node):
        OUTPUT_NODE = True

        def run(self, ctx):
            return Result(ui={"value": [float("nan")]})

    env = StubEnv(tmp_path / "out")
    store = Store(tmp_path / "nan.sqlite3")
    worker = Worker(store, Executor({**STUB_NODES, "NaN": NaNOutput}, env), lambda e, d, c: None)
    store.add("nan", 1, {"7": {"class_type": "NaN", "inputs": {}}}, {}, ["7"])
    add(store, "next")
    worker.start()
    try:
        entry = wait_for(lambda: store.history_entry("nan"))
        assert entry["status"]["status_str"] == "error"
        error = entry["status"]["messages"][-1][1]
        assert error["node_id"] == "7" and "cannot be stored" in error["exception_message"]
        assert wait_for(lambda: store.history_entry("next"))["status"]["completed"]
    finally:
        worker.stop()


def test_stop_records_a_job_whose_node_ignores_the_interrupt(tmp_path):
    env = StubEnv(tmp_path / "out")
    store, worker, _ = make_worker(tmp_path, env)
    stuck = {"1": {"class_type": "Const", "inputs": {"value": 1}},
             "2": {"class_type": "Slow", "inputs": {"x": ["1", 0], "steps": 2, "delay": 1.0,
                                                    "preview": False}},
             "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}
    store.add("stuck", 1, stuck, {}, ["3"])
    worker.start()
    wait_for(env.started.is_set)
    worker.stop(timeout=0.2)  # the node sleeps 1 s before it can notice
    entry = store.history_entry("stuck")
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert store.running() == []
    wait_for(lambda: not worker._thread.is_alive(), timeout=5)
    assert store.history_entry("stuck") == entry  # the late finish changed nothing
