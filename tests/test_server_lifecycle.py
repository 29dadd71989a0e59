"""The server as a process: Ctrl+C exits fast and records the running job; port in use."""
import json
import signal
import socket
import sqlite3
import time
import uuid

from tests.server_harness import (connect_ws, http_json, server_args, spawn_server,
                                  start_server_process, wait_for)
from tests.stub_nodes import chain_prompt


def running_ids(base):
    return [item[1] for item in http_json("GET", base + "/queue")[1]["queue_running"]]


def test_ctrl_c_with_socket_and_running_job_exits_within_5s_and_records_it(tmp_path):
    srv = start_server_process(server_args(tmp_path), tmp_path / "logs")
    try:
        cid = uuid.uuid4().hex
        ws = connect_ws(srv.base, cid)
        ws.recv()  # status: the socket is live
        pid = http_json("POST", srv.base + "/prompt", {
            "prompt": chain_prompt(value=5, steps=1000, delay=0.02), "client_id": cid})[1]["prompt_id"]
        wait_for(lambda: running_ids(srv.base) == [pid])
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGINT)
        srv.proc.wait(5)  # raises TimeoutExpired if the shutdown takes longer
        assert time.monotonic() - started < 5
        assert "stopped" in srv.proc.log_files[0].read_text()  # it says so, naming the data folder
        ws.close()
    finally:
        srv.stop(signal.SIGKILL)
    # Read the file directly: opening a Store would run recovery and hide a missing record.
    db = sqlite3.connect(tmp_path / "user" / "cascade.sqlite3")
    state, entry = db.execute("SELECT state, entry FROM jobs WHERE prompt_id=?", (pid,)).fetchone()
    assert state == "done"
    assert json.loads(entry)["status"]["messages"][-1][0] == "execution_interrupted"


def test_port_in_use_is_one_line_naming_port_and_flag(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = spawn_server(server_args(tmp_path, port=port), tmp_path / "logs")
        assert proc.wait(30) != 0
    err = proc.log_files[1].read_text().strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(port) in err and "--port" in err
    # Nothing was recovered or created in the data folder's database by the failed start.
    assert not (tmp_path / "user" / "cascade.sqlite3").exists()
