"""The orchestrator's HTTP service: the JSON API (`api.py`), the pages people look at (`pages/`), health.

At start-up it takes its runs folder (one process per folder) and picks up the runs a previous process
left unfinished (`runs.on_restart`); with `runs.url` (PostgreSQL) any number of replicas share the runs,
each renewing the leases of the runs it drives and adopting those of a replica that stopped.
CORS is absent. With API keys configured, programs send
`Authorization: Bearer`, and browsers enter a key once for a session cookie (`pages/session.py`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Scope

from orchestrator.api import API_ROUTES
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import OrchestratorConfig
from orchestrator.flow import FLOW_NAME, ROLES, P0ProductDetailFlow
from orchestrator.metrics import FlowMetrics
from orchestrator.openapi import orchestrator_openapi
from orchestrator.pages.render import PageRenderer
from orchestrator.pages.routes import PAGE_ROUTES
from orchestrator.pages.session import ConsoleAuthMiddleware, ConsoleSessions
from orchestrator.runs import FileRunImageStore, FileRunStore, RunFeed, RunImageStore, RunRunner, RunStore
from orchestrator.runs.images import S3RunImageStore
from orchestrator.runs.pg_store import PostgresRunStore
from orchestrator.samples import load_samples
from orchestrator.state import AppState
from service_common.auth import key_hashes
from service_common.config import ConfigError
from service_common.cors import cors_middleware
from service_common.http import RequestMiddleware, error_handlers
from service_common.metrics import metrics_route
from service_common.objects import parse_s3_url
from service_common.openapi import openapi_route
from service_common.postgres import Heartbeat, replica_name

__all__ = ["CONSOLE_OPEN_PATHS", "AppState", "create_app"]

# Answered without a key even when keys are on: the key form needs its script and style, and the
# session endpoint checks the key itself.
CONSOLE_OPEN_PATHS = (
    "/static/console.css", "/static/console.js", "/static/favicon.svg", "/api/v1/console/session", "/docs",
)


def _run_store(config: OrchestratorConfig) -> RunStore:
    if config.runs.url:
        return PostgresRunStore(config.runs.url, owner=replica_name(), lease_s=config.runs.lease_s)
    return FileRunStore(config.runs.dir)


def _image_store(config: OrchestratorConfig) -> RunImageStore:
    if not config.runs.images_url:
        return FileRunImageStore(config.runs.images_path)
    try:
        return S3RunImageStore(parse_s3_url(config.runs.images_url), config.runs.s3)
    except ValueError as exc:
        raise ConfigError(f"runs.s3: {exc}") from exc


def create_app(
    config: OrchestratorConfig,
    *,
    store: RunStore | None = None,
    images: RunImageStore | None = None,
    metrics: FlowMetrics | None = None,
) -> Starlette:
    """The ASGI app; the gateway sessions open in the lifespan and close on shutdown. `GET /metrics` included."""
    run_store = store or _run_store(config)
    image_store = images or _image_store(config)
    flow_metrics = metrics if metrics is not None else FlowMetrics()
    hashes = key_hashes(config.auth)
    sessions = ConsoleSessions(hashes, secret=config.console.session_secret, ttl_s=config.console.session_ttl_s)
    renderer = PageRenderer(roles=ROLES, samples=load_samples(), auth=bool(hashes))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        async with contextlib.AsyncExitStack() as stack:
            await run_store.open()
            stack.push_async_callback(run_store.close)
            await image_store.start()
            stack.push_async_callback(image_store.close)
            llm = await stack.enter_async_context(LLMGatewayClient.from_config(config.llm_gateway))
            media = await stack.enter_async_context(MediaGatewayClient.from_config(config.media_gateway))
            feed = RunFeed()
            flow = P0ProductDetailFlow.build(llm, media, config.flow, images=image_store)
            runner = RunRunner(flow, run_store, metrics=flow_metrics, feed=feed)
            stack.push_async_callback(functools.partial(runner.close, grace_s=config.runs.shutdown_grace_s))
            await runner.recover(on_restart=config.runs.on_restart, timeout_s=config.runs.timeout_s)
            if run_store.shared:
                beats = Heartbeat(
                    functools.partial(runner.beat, on_restart=config.runs.on_restart, timeout_s=config.runs.timeout_s),
                    every_s=config.runs.heartbeat_s, name="runs-leases",
                )
                beats.start()
                # Stopped before the runner closes, so nothing is adopted while this replica shuts down.
                stack.push_async_callback(beats.close)
            yield {
                "config": config, "llm": llm, "media": media, "runner": runner, "store": run_store,
                "images": image_store, "feed": feed, "pages": renderer, "sessions": sessions,
            }

    async def login_page(scope: Scope) -> bytes:
        return renderer.login(str(scope["path"])).encode("utf-8")

    # CORS (only with `server.cors_origins`) sits outside the key check: a preflight carries no key.
    middleware = [Middleware(RequestMiddleware, metrics=flow_metrics), *cors_middleware(config.server.origins)]
    if hashes:
        # The key check sits inside RequestMiddleware, so a 401 carries the request id too and is counted.
        middleware.append(Middleware(
            ConsoleAuthMiddleware, sessions=sessions, hashes=hashes,
            open_paths=[*config.auth.open_paths, *CONSOLE_OPEN_PATHS], login_page=login_page,
        ))
    document = orchestrator_openapi(FLOW_NAME, auth=bool(hashes))
    app = Starlette(
        routes=[*API_ROUTES, *PAGE_ROUTES, openapi_route(document), metrics_route(flow_metrics)],
        middleware=middleware,
        exception_handlers=error_handlers(),
        lifespan=lifespan,
    )
    app.state.openapi = document  # `/docs` renders it for people
    return app
