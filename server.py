"""Cascade Studio server: wires config, engine and the aiohttp routes (HTTP + WebSocket only).

Start-up order matters: the data-folder lock first (so a second server touches nothing), then
the port (checked by binding it ourselves, so "in use" is one line, not a traceback), then the
store (whose recovery marks a crashed job interrupted), then serving.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
from typing import Any, Callable, Mapping

from aiohttp import web

from api import register_routes
from api.common import SERVICES, Services
from api.redact import REDACTOR, redactor
from api.security import MIDDLEWARES
from api.webhooks import Webhooks
from api.ws import Hub
from config import Config
from engine.datalock import DataFolderBusy, DataLock
from engine.dbfile import DatabaseUnavailable
from engine.executor import Executor
from engine.schema import Node
from engine.store import Store
from runtime import allocator
from runtime.compiled import compile_mode
from engine.worker import Worker
from runtime.temp_files import wipe_temp

log = logging.getLogger("cascade.server")
DB_NAME = "cascade.sqlite3"
DATA_LOCK = web.AppKey("data_lock", DataLock)
WEBHOOKS = web.AppKey("webhooks", Webhooks)
# Ctrl+C must end the process within 5 s: the worker gets this long to stop its node, open
# sockets this long to close, and in-flight requests this long to finish.
WORKER_STOP_S, SOCKET_CLOSE_S, SHUTDOWN_S = 1.5, 0.5, 1.5


def create_app(config: Config, registry: Mapping[str, type[Node]], env: Any,
               lock: DataLock | None = None, nodes: Callable | None = None) -> web.Application:
    """The application; the worker thread starts and stops with the app's lifecycle.

    With ``config.workers`` jobs run on Ray actors that build their nodes with `nodes(config)`
    (a module-level function, imported by name in each worker; default load_nodes).

    Takes the data-folder lock unless `lock` (already held) is given; raises DataFolderBusy
    when another server holds it, before the store is opened."""
    config.check_safe()
    for folder in (config.output_dir, config.input_dir, config.temp_dir, config.data_dir):
        folder.mkdir(parents=True, exist_ok=True)
    lock = lock or DataLock(config.data_dir, config.port)
    try:
        store = Store(config.data_dir / DB_NAME, history_max=config.history_max)
    except BaseException:
        lock.release()
        raise
    hub = Hub(config.preview_size, config.ws_outbox_messages, config.ws_outbox_bytes,
              config.ws_heartbeat_s)
    webhooks = Webhooks(config.data_dir, config.webhook_allow, config.webhook_backoff_s)

    def on_end(prompt_id: str, state: str, entry: dict | None) -> None:
        hub.job_ended(prompt_id, state, entry)  # answers its ?wait=true requests
        webhooks.job_ended(prompt_id, state, entry)

    store.on_end = on_end  # called on every way a job ends
    executor = Executor(registry, env)
    free_hook = getattr(env, "free_memory", None)  # optional Env hook for POST /free
    on_free = free_hook if callable(free_hook) else None
    if config.workers:  # scale-out: imported only here, so the default never imports Ray
        from engine.dispatch import Dispatcher, require_ray, weights_of

        require_ray()
        worker: Worker = Dispatcher(store, executor, hub.publish_threadsafe, on_free,
                                    nodes=nodes or load_nodes, config=config,
                                    workers=config.workers, address=config.ray_address,
                                    job_models=weights_of(registry, env),
                                    worker_env=allocator.child_env())
    else:
        worker = Worker(store, executor, hub.publish_threadsafe, on_free=on_free)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=MIDDLEWARES)
    app[SERVICES] = Services(config, registry, env, store, executor, worker, hub)
    app[REDACTOR] = redactor(config)  # path roots resolved once, not per request
    app[DATA_LOCK] = lock
    app[WEBHOOKS] = webhooks
    register_routes(app)
    app.on_shutdown.append(_on_shutdown)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application):
    """Start the worker with the loop; at the end close the store and drop the lock."""
    svc = app[SERVICES]
    svc.hub.loop = app[WEBHOOKS].loop = asyncio.get_running_loop()
    svc.worker.start()
    try:
        yield
    finally:
        await app[WEBHOOKS].close()
        svc.store.close()
        app[DATA_LOCK].release()


async def _on_shutdown(app: web.Application) -> None:
    """Before connections are drained: record the running job, answer waiters, close sockets."""
    svc = app[SERVICES]
    await asyncio.to_thread(svc.worker.stop, WORKER_STOP_S)
    svc.hub.release_waiters(svc.store.job)
    await svc.hub.close_all(SOCKET_CLOSE_S)


def load_nodes(config: Config) -> tuple[Mapping[str, type[Node]], Any]:
    """Import the real node registry and environment lazily, with a clear message if absent.

    Tunes the host allocator first (runtime/allocator.py): before the models load and threads allocate."""
    allocator.tune()
    try:
        from nodes.registry import NODES
        from runtime.env import Env
    except ImportError as exc:
        raise SystemExit(f"cannot start: the node package is missing or broken ({exc}). "
                         "Expected nodes/registry.py (NODES) and runtime/env.py (Env).") from exc
    return NODES, Env(config)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or SystemExit with one line saying what to change."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
        return socket.create_server(address, family=family, backlog=128)
    except OverflowError:
        raise SystemExit(f"error: port {port} is out of range; pass --port 1-65535") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(f"error: port {port} on {host} is already in use (another server?); "
                             "choose another with --port N") from None
        raise SystemExit(f"error: cannot listen on {host} port {port} ({exc.strerror or exc}); "
                         "check --host and --port") from None


def main(argv: list[str] | None = None,
         nodes: Callable[[Config], tuple[Mapping[str, type[Node]], Any]] | None = None) -> None:
    """``python server.py [--host H] [--port P] [--data DIR] [--weights DIR] [--token T] ...``.

    `nodes` builds (registry, env) from the config (tests pass stub nodes). ``--port 0`` picks
    a free port; the printed URL names the one bound."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config.from_cli(sys.argv[1:] if argv is None else argv)
    try:
        config.check_safe()
        compile_mode(None)  # $CASCADE_COMPILE: an unknown mode would otherwise fail every sampler node
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if config.extra.get("run"):  # headless: same executor, no HTTP (see cli.py)
        import cli
        raise SystemExit(cli.main(sys.argv[1:] if argv is None else argv))
    try:
        lock = DataLock(config.data_dir, config.port)
    except DataFolderBusy as exc:
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:  # e.g. a read-only folder: one line, not a traceback
        raise SystemExit(f"error: cannot use the data folder {config.data_dir} "
                         f"({exc.strerror or exc}); check its permissions or pass --data DIR") \
            from None
    sock = listen(config.host, config.port)
    port = sock.getsockname()[1]
    wipe_temp(config)  # last run's PreviewImage files; only once the data lock and port are ours
    lock.update(port)
    registry, env = (nodes or load_nodes)(config)
    try:
        app = create_app(config, registry, env, lock=lock, nodes=nodes or load_nodes)
    except (DatabaseUnavailable, OSError) as exc:  # read-only, locked by another program, ...
        raise SystemExit(f"error: {exc}") from None
    host = f"[{config.host}]" if ":" in config.host else config.host
    suffix = "/?token=<your token>" if config.token else "/"
    print(f"Cascade Studio: http://{host}:{port}{suffix}", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=SHUTDOWN_S)
    print(f"Cascade Studio stopped; the queue and history are kept in {config.data_dir}", flush=True)


if __name__ == "__main__":
    main()
