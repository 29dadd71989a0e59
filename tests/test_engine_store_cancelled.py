"""Cancelled pending jobs are kept as records: capped, invisible to queue/history, id reusable."""
import pytest

from engine.joblist import job_record, list_jobs
from engine.store import DuplicateJob, Store
from tests.test_engine_store import add


def test_cancelled_rows_are_records_not_queue_or_history(tmp_path):
    ended = []
    store = Store(tmp_path / "c.sqlite3", history_max=2,
                  on_end=lambda pid, state, entry: ended.append((pid, state)))
    for pid in "abcd":
        add(store, pid)
    store.delete_pending(["a"])
    store.clear_pending()
    assert ended == [("a", "cancelled"), ("b", "cancelled"), ("c", "cancelled"),
                     ("d", "cancelled")]
    assert store.pending() == [] and store.history() == {} and store.counts() == (0, 0)
    jobs, total = list_jobs(store)
    assert total == 2 and [j["id"] for j in jobs] == ["d", "c"]  # capped at history_max
    assert store.job("d")["state"] == "cancelled" and store.job("a") is None
    assert job_record(store, "d")["status"] == "cancelled"
    assert not store.exists("d")
    add(store, "d")  # the record gives its id up to a new prompt
    assert store.job("d")["state"] == "pending"
    with pytest.raises(DuplicateJob):
        add(store, "d")
    store.clear_history()
    assert list_jobs(store, ["cancelled"])[1] == 0 and store.job("d")["state"] == "pending"


def test_finish_never_revives_a_cancelled_job(tmp_path):
    store = Store(tmp_path / "c.sqlite3")
    add(store, "x")
    store.delete_pending(["x"])
    store.finish("x", {"outputs": {}, "status": {"status_str": "success", "completed": True,
                                                  "messages": []}, "prompt": [], "meta": {}})
    assert store.job("x")["state"] == "cancelled" and store.history() == {}
