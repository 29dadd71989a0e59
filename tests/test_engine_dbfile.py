"""A database that opens but cannot be used: moved aside when unusable, one line when unwritable."""
import logging
import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from config import PROJECT_ROOT
from engine.store import Store
from tests.server_harness import server_args, spawn_server


def _foreign_schema(path: Path) -> None:
    """Another program's (or another version's) database at our path."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, payload TEXT)")
    db.execute("INSERT INTO jobs (payload) VALUES ('theirs')")
    db.commit()
    db.close()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize("damage", [_foreign_schema, _fifo])
def test_unusable_database_is_moved_aside_never_deleted(tmp_path, caplog, damage):
    path = tmp_path / "q.sqlite3"
    damage(path)
    before = path.read_bytes() if path.is_file() else None
    with caplog.at_level(logging.WARNING, logger="cascade.store"):
        store = Store(path)
    store.add("new", 1, {"1": {"class_type": "Const", "inputs": {"value": 1}}}, {}, ["1"])
    assert [item[1] for item in store.pending()] == ["new"]
    store.close()
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name
             and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1
    if before is not None:
        assert aside[0].read_bytes() == before
        kept = sqlite3.connect(aside[0]).execute("SELECT payload FROM jobs").fetchall()
        assert kept == [("theirs",)]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and str(path) in lines[0] and str(aside[0]) in lines[0]


def _open_unwritable(path: Path) -> subprocess.CompletedProcess:
    """``Store(path)`` in a child that can read `path` but never write a byte to any file: a
    file-size limit of 0 makes every write fail (EFBIG, as on a full disk or a read-only
    file), and unlike file permissions it also binds root."""
    code = ("import sys; from engine.store import Store\n"
            "try:\n    Store(__import__('pathlib').Path(sys.argv[1]))\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc); sys.exit(3)\n"
            "print('opened')\n")
    return subprocess.run([sys.executable, "-c", code, str(path)], cwd=PROJECT_ROOT,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)),
                          capture_output=True, text=True, timeout=60)


def test_unwritable_database_is_refused_at_open_not_on_every_write(tmp_path):
    path = tmp_path / "q.sqlite3"
    store = Store(path)
    store.add("kept", 1, {"1": {"class_type": "Const", "inputs": {"value": 1}}}, {}, ["1"])
    store.close()
    before = path.read_bytes()
    done = _open_unwritable(path)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert done.stdout.startswith("DatabaseUnavailable") and str(path) in done.stdout
    assert len(done.stdout.strip().splitlines()) == 1
    assert path.read_bytes() == before  # refused, never moved aside or changed
    assert [p.name for p in tmp_path.iterdir() if ".damaged-" in p.name] == []


def test_unusable_data_folder_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "user").write_text("a file where the data folder should be")
    args = server_args(tmp_path)
    proc = spawn_server(args, tmp_path / "logs")
    code = proc.wait(60)
    err = proc.log_files[1].read_text().strip()
    assert code != 0 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(tmp_path / "user") in err and "--data" in err


def test_an_older_version_of_our_tables_is_upgraded_in_place_not_moved_aside(tmp_path):
    """A release that adds a nullable column must keep every user's queue and history."""
    from engine.store import SCHEMA

    path = tmp_path / "q.sqlite3"
    older = SCHEMA.replace("    entry TEXT,\n    worker TEXT\n", "").replace("done_seq INTEGER,",
                                                                           "done_seq INTEGER")
    assert older != SCHEMA and "entry TEXT" not in older and "worker TEXT" not in older
    db = sqlite3.connect(path)
    db.executescript(older)
    db.execute("INSERT INTO jobs (prompt_id, seq, number, state, prompt, extra_data, outputs, created) "
               "VALUES ('kept', 1, 1, 'pending', '{}', '{}', '[]', 0)")
    db.commit()
    db.close()
    store = Store(path)
    assert [item[1] for item in store.pending()] == ["kept"]
    assert not list(tmp_path.glob("*.damaged-*"))
    store.close()
