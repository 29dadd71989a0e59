"""One data folder, one server: an exclusive ``flock`` on ``<data>/server.lock``.

Taken before the store recovers "running" jobs and before the port is bound, so a second
server on the same folder can neither mark the first one's job interrupted nor take its queue.
The kernel drops the lock when the holder dies (even by SIGKILL), so a stale file never blocks.
The file holds the holder's pid and port for the refusal message.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

LOCK_NAME = "server.lock"


class DataFolderBusy(RuntimeError):
    """Another live process holds the folder; ``str()`` is the one-line message for users."""

    def __init__(self, folder: Path, holder: dict):
        pid, port = holder.get("pid", "?"), holder.get("port", "?")
        super().__init__(f"the data folder {folder} is in use by another Cascade Studio server "
                         f"(pid {pid}, port {port}); stop it, or pass --data DIR to run a second "
                         "server with its own queue and history")
        self.folder, self.holder = folder, holder


class DataLock:
    """``DataLock(folder, port)`` takes the lock or raises DataFolderBusy; ``release()`` ends it."""

    def __init__(self, folder: Path, port: int | None = None):
        self._fd: int | None = None  # set once held (``__del__`` may run on a failed init)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise DataFolderBusy(folder, holder) from None
        self._fd = fd
        self.update(port)

    def update(self, port: int | None) -> None:
        """Record the port actually bound (known only after binding port 0)."""
        if self._fd is None:
            return
        data = json.dumps({"pid": os.getpid(), "port": port}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock

    def __del__(self) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}
