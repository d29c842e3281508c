"""The orchestrator's HTTP service: start P0 runs, read them back, report health and readiness."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import msgspec
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import OrchestratorConfig
from orchestrator.flow import FLOW_NAME, P0ProductDetailFlow
from orchestrator.runs import FileRunStore, RunStore, summary_of
from service_common.http import MsgspecResponse, RequestIdMiddleware, decode_body, error_handlers, request_id_of
from service_common.metrics import FlowMetrics, instrument
from shared_contracts.errors import ErrorBody, GatewayError, InvalidRequest, NotReady
from shared_contracts.flows import RunDocument, RunList, RunRequest

__all__ = ["AppState", "RunRunner", "create_app"]

_decode_run_request = msgspec.json.Decoder(RunRequest)
_log = structlog.get_logger(component="orchestrator")


class RunRunner:
    """Runs flows for the service, waited or in the background, saving the document as it grows."""

    def __init__(self, flow: P0ProductDetailFlow, store: RunStore, *, metrics: FlowMetrics | None = None) -> None:
        self.flow = flow
        self.store = store
        self.metrics = metrics
        # Strong references: asyncio keeps only weak ones to tasks, and a collected task is a lost run.
        self._tasks: set[asyncio.Task[RunDocument]] = set()

    async def run(self, doc: RunDocument, request_id: str | None) -> RunDocument:
        """Run to the end; whatever happens, the stored document ends `succeeded` or `failed`."""
        try:
            result = await self.flow.run(doc.product, request_id=request_id, on_update=self.store.save, document=doc)
        except asyncio.CancelledError:
            await self._fail(doc, ErrorBody(code="canceled", message="the orchestrator stopped before the run ended"))
            raise
        except Exception:  # the run's outermost handler: a bug must not leave the run "running" forever
            _log.exception("run_crashed", run_id=doc.run_id)
            await self._fail(doc, ErrorBody(code="internal_error", message="internal error", request_id=request_id))
            return doc
        if self.metrics is not None:
            self.metrics.observe_run(result)
        return result

    async def _fail(self, doc: RunDocument, error: ErrorBody) -> None:
        doc.status, doc.error = "failed", error
        await self.store.save(doc)

    def start(self, doc: RunDocument, request_id: str | None) -> None:
        """Run in the background; `GET /api/v1/runs/{id}` shows the progress."""
        task = asyncio.create_task(self.run(doc, request_id), name=f"run-{doc.run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel background runs (each records that it was stopped) and wait for them."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
    body = await decode_body(request, _decode_run_request, max_bytes=state["config"].server.max_body_bytes)
    runner = state["runner"]
    doc = runner.flow.new_document(body.product)
    await state["store"].save(doc)
    request_id = request_id_of(request)
    if body.wait:
        return MsgspecResponse(await runner.run(doc, request_id))
    runner.start(doc, request_id)
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
        llm = LLMGatewayClient.from_config(config.llm_gateway)
        media = MediaGatewayClient.from_config(config.media_gateway)
        async with contextlib.AsyncExitStack() as stack:
            for client in (llm, media):
                await client.start()
                stack.push_async_callback(client.close)
            runner = RunRunner(P0ProductDetailFlow.build(llm, media, config.flow), run_store, metrics=flow_metrics)
            stack.push_async_callback(runner.close)
            yield {"config": config, "llm": llm, "media": media, "runner": runner, "store": run_store}

    app = Starlette(
        routes=list(ROUTES),
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers=error_handlers(),
        lifespan=lifespan,
    )
    instrument(app, flow_metrics)
    return app
