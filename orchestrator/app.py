"""The orchestrator's HTTP service: start P0 runs, read them back, report health and readiness.

Every run has a deadline (`runs.timeout_s`, shortened by the request's `X-Request-Timeout`); gateway calls
inside it send what is left, so no gateway works longer than the run's caller waits. CORS is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import OrchestratorConfig
from orchestrator.flow import FLOW_NAME, P0ProductDetailFlow
from orchestrator.metrics import FlowMetrics
from orchestrator.openapi import orchestrator_openapi
from orchestrator.runs import FileRunStore, RunRunner, RunStore, summary_of
from service_common.auth import auth_middleware, key_hashes
from service_common.deadline import effective_timeout, request_timeout
from service_common.http import MsgspecResponse, RequestIdMiddleware, decode_body, error_handlers, request_id_of
from service_common.metrics import instrument
from service_common.openapi import openapi_route
from shared_contracts.errors import GatewayError, InvalidRequest, NotReady
from shared_contracts.flows import RunList, RunRequest

__all__ = ["AppState", "create_app"]

_decode_run_request = msgspec.json.Decoder(RunRequest)


class AppState(TypedDict):
    """What the lifespan puts on `request.state`."""

    config: OrchestratorConfig
    llm: LLMGatewayClient
    media: MediaGatewayClient
    runner: RunRunner
    store: RunStore


def _state(request: Request) -> AppState:
    s = request.state
    return AppState(config=s.config, llm=s.llm, media=s.media, runner=s.runner, store=s.store)


async def create_run(request: Request) -> Response:
    """`POST /api/v1/flows/p0-product-detail/runs`: 200 with the result, or 202 and the run id."""
    state = _state(request)
    requested = request_timeout(request.headers)
    body = await decode_body(request, _decode_run_request, max_bytes=state["config"].server.max_body_bytes)
    timeout_s = effective_timeout(state["config"].runs.timeout_s, requested)
    runner = state["runner"]
    doc = runner.flow.new_document(body.product)
    await state["store"].save(doc)
    request_id = request_id_of(request)
    if body.wait:
        return MsgspecResponse(await runner.run(doc, request_id, timeout_s=timeout_s))
    runner.start(doc, request_id, timeout_s=timeout_s)
    return MsgspecResponse(doc, status_code=202, headers={"location": f"/api/v1/runs/{doc.run_id}"})


async def get_run(request: Request) -> Response:
    """`GET /api/v1/runs/{run_id}`."""
    return MsgspecResponse(await _state(request)["store"].get(request.path_params["run_id"]))


async def list_runs(request: Request) -> Response:
    """`GET /api/v1/runs?limit=N`: recent runs, newest first."""
    state = _state(request)
    cap = state["config"].runs.recent_limit
    raw = request.query_params.get("limit", str(cap))
    if not raw.isdigit() or not 1 <= int(raw) <= cap:
        raise InvalidRequest(f"limit must be an integer from 1 to {cap}", details={"path": "limit"})
    docs = await state["store"].recent(int(raw))
    return MsgspecResponse(RunList(runs=[summary_of(doc) for doc in docs]))


async def healthz(request: Request) -> Response:
    """The process is up."""
    return MsgspecResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when both gateways say they are; otherwise 503 naming the one that is not."""
    state = _state(request)
    checks = {"llm_gateway": state["llm"].check_ready(), "media_gateway": state["media"].check_ready()}
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    failing: dict[str, Any] = {}
    for name, result in zip(checks, results, strict=True):
        if isinstance(result, GatewayError):
            failing[name] = {"code": result.code, "message": result.message}
        elif isinstance(result, BaseException):
            raise result
    if failing:
        raise NotReady(f"not ready: {', '.join(failing)}", details=failing)
    return MsgspecResponse({"status": "ready", "gateways": {name: "ready" for name in checks}})


ROUTES = [
    Route(f"/api/v1/flows/{FLOW_NAME}/runs", create_run, methods=["POST"]),
    Route("/api/v1/runs", list_runs, methods=["GET"]),
    Route("/api/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]


def create_app(
    config: OrchestratorConfig, *, store: RunStore | None = None, metrics: FlowMetrics | None = None
) -> Starlette:
    """The ASGI app; the gateway sessions open in the lifespan and close on shutdown. `GET /metrics` included."""
    run_store = store or FileRunStore(config.runs.dir)
    flow_metrics = metrics if metrics is not None else FlowMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        async with contextlib.AsyncExitStack() as stack:
            llm = await stack.enter_async_context(LLMGatewayClient.from_config(config.llm_gateway))
            media = await stack.enter_async_context(MediaGatewayClient.from_config(config.media_gateway))
            runner = RunRunner(P0ProductDetailFlow.build(llm, media, config.flow), run_store, metrics=flow_metrics)
            stack.push_async_callback(functools.partial(runner.close, grace_s=config.runs.shutdown_grace_s))
            yield {"config": config, "llm": llm, "media": media, "runner": runner, "store": run_store}

    app = Starlette(
        routes=[*ROUTES, openapi_route(orchestrator_openapi(FLOW_NAME, auth=bool(key_hashes(config.auth))))],
        # The key check sits inside RequestIdMiddleware, so a 401 carries the request id too.
        middleware=[Middleware(RequestIdMiddleware), *auth_middleware(config.auth)],
        exception_handlers=error_handlers(),
        lifespan=lifespan,
    )
    instrument(app, flow_metrics)
    return app
