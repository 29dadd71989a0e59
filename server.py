"""Cascade Studio server: wires config, engine and the aiohttp routes (HTTP + WebSocket only)."""
from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, Mapping

from aiohttp import web

from api import register_routes
from api.common import SERVICES, Services
from api.security import MIDDLEWARES
from api.ws import Hub
from config import Config
from engine.executor import Executor
from engine.schema import Node
from engine.store import Store
from engine.worker import Worker

log = logging.getLogger("cascade.server")
DB_NAME = "cascade.sqlite3"


def create_app(config: Config, registry: Mapping[str, type[Node]], env: Any) -> web.Application:
    """The application; the worker thread starts and stops with the app's lifecycle."""
    config.check_safe()
    for folder in (config.output_dir, config.input_dir, config.temp_dir, config.data_dir):
        folder.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir / DB_NAME, history_max=config.history_max)
    hub = Hub(config.preview_size)
    executor = Executor(registry, env)
    free_hook = getattr(env, "free_memory", None)  # optional Env hook for POST /free
    worker = Worker(store, executor, hub.publish_threadsafe,
                    on_free=free_hook if callable(free_hook) else None)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=MIDDLEWARES)
    app[SERVICES] = Services(config, registry, env, store, executor, worker, hub)
    register_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application):
    """Start the worker with the loop; on shutdown stop it (a running job is recorded)."""
    svc = app[SERVICES]
    svc.hub.loop = asyncio.get_running_loop()
    svc.worker.start()
    try:
        yield
    finally:
        await svc.hub.close_all()
        await asyncio.to_thread(svc.worker.stop)
        svc.store.close()


def load_nodes(config: Config) -> tuple[Mapping[str, type[Node]], Any]:
    """Import the real node registry and environment lazily, with a clear message if absent."""
    try:
        from nodes.registry import NODES
        from nodes.env import Env
    except ImportError as exc:
        raise SystemExit(f"cannot start: the node package is missing or broken ({exc}). "
                         "Expected nodes/registry.py (NODES) and nodes/env.py (Env).") from exc
    return NODES, Env(config)


def main(argv: list[str] | None = None) -> None:
    """``python server.py [--host H] [--port P] [--weights DIR] [--output DIR] [--token T]``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config.from_cli(sys.argv[1:] if argv is None else argv)
    try:
        config.check_safe()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if config.extra.get("run"):  # headless: same executor, no HTTP (see cli.py)
        import cli
        raise SystemExit(cli.main(sys.argv[1:] if argv is None else argv))
    registry, env = load_nodes(config)
    app = create_app(config, registry, env)
    host = f"[{config.host}]" if ":" in config.host else config.host
    suffix = "/?token=<your token>" if config.token else "/"
    print(f"Cascade Studio: http://{host}:{config.port}{suffix}", flush=True)
    web.run_app(app, host=config.host, port=config.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
