"""Ray's side of the server: starting or joining the cluster, and a cancel flag that reaches an actor.

Imported only for scale-out (``--workers``/``--ray-address``); ``ray`` itself only inside functions.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger("cascade.dispatch")


def start_ray(address: str | None, workers: int, object_store_bytes: int | None = None) -> bool:
    """Join `address`, or start a local cluster bound to loopback only; True if we started it.

    Ray resolves 127.0.0.1 to the machine's routable address (so nodes can join) unless told
    clusters are off: this one switch makes every Ray server bind 127.0.0.1 (see the doc)."""
    if address is None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    from ray._private import ray_constants

    if address is None:  # read at import time, and ray may have been imported already
        ray_constants.ENABLE_RAY_CLUSTER = False

    if ray.is_initialized():  # an embedding program (or a test) owns the cluster
        return False
    if address is not None:
        ray.init(address=address, namespace="cascade", log_to_driver=False)
        return False
    ray.init(num_cpus=workers, include_dashboard=False, namespace="cascade",
             object_store_memory=object_store_bytes or 200 * 1024 * 1024,
             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False)
    return True


def require_ray() -> None:
    """SystemExit with the install line when the optional dependency is missing."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise SystemExit("error: --workers/--ray-address need Ray: .venv/bin/pip install "
                         "-c requirements.lock -r requirements-ray.txt")


class RemoteCancel(threading.Event):
    """The job's cancel flag; setting it also interrupts the job on its actor."""

    def __init__(self, actor: Any, prompt_id: str):
        super().__init__()
        self.actor, self.prompt_id = actor, prompt_id

    def set(self) -> None:
        if not self.is_set():
            try:
                self.actor.cancel.remote(self.prompt_id)
            except Exception:  # a dead actor: its job ends as an error anyway
                log.warning("could not reach the worker to cancel %s", self.prompt_id)
        super().set()
