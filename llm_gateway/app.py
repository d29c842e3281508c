"""The LLM Gateway's HTTP surface: `create_app(config)` builds the Starlette app; nothing runs at import time."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from time import perf_counter
from typing import Any

import msgspec
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service_common.auth import auth_middleware, key_hashes
from service_common.breaker import Clock
from service_common.cors import cors_middleware
from service_common.deadline import TIMEOUT_HEADER, request_timeout
from service_common.fixtures import opened_fixtures, secrets_of
from service_common.http import (
    MsgspecResponse,
    RequestMiddleware,
    decode_body,
    error_handlers,
    picked_headers,
    request_id_of,
)
from service_common.logging import EventLog
from service_common.metrics import label_request, metrics_route
from service_common.modes import MODE_HEADER, answering_mode, mode_header, requested_mode, requested_scenario
from service_common.openapi import openapi_route
from service_common.sse import sse_event
from shared_contracts.errors import ErrorEnvelope, GatewayError, NotReady
from shared_contracts.llm import GenerateRequest, GenerateResponse, Mode, StreamDelta
from shared_contracts.scenarios import LLM_SCENARIOS, SCENARIO_HEADER

from .config import GatewayConfig
from .embed_api import embed_routes
from .embedding import build_embedder
from .fixtures import FixtureStore
from .gateway import Gateway
from .guards import build_guards
from .metrics import LLMMetrics
from .openai_compat import openai_routes
from .openai_embeddings import openai_embedding_routes
from .openai_errors import OpenAIErrorMiddleware
from .openapi import llm_openapi
from .plan import GatewayStream
from .providers.base import Provider
from .readiness import Readiness
from .registry import build_providers
from .reload import RoutingReloader
from .routing import Router
from .streaming import DeadlineStream, first_item, resumed

__all__ = ["STREAM_CUT", "build_fixtures", "build_gateway", "create_app"]

_decode_request = msgspec.json.Decoder(GenerateRequest)
_encode = msgspec.json.Encoder().encode
_JSON = "application/json"
# The request headers a generate call reads, picked in one pass.
_CALL_HEADERS = frozenset(name.encode("ascii") for name in (TIMEOUT_HEADER, MODE_HEADER, SCENARIO_HEADER))
# The outcome of a stream whose client did not read it before the deadline (not an upstream error).
STREAM_CUT = "stream_cut"


def _freeze_heap() -> None:
    # Everything alive now (modules, config, providers, sessions) lives as long as the process. Moving it
    # out of the collector's generations stops every full collection from re-scanning it under load.
    gc.collect()
    gc.freeze()
    # A request allocates a few hundred short-lived containers, nearly all freed by reference counting; at
    # the default threshold (700) the young generation was collected every few requests for nothing. Fewer,
    # larger young collections measured ~10 % less CPU per request; cycles are still collected.
    gc.set_threshold(50_000, 20, 100)


def build_gateway(config: GatewayConfig, *, clock: Clock | None = None) -> Gateway:
    """The Gateway for `config`: providers imported and configured now, so bad YAML fails before serving.

    `clock` drives the circuit breakers (tests pass a hand-moved one).
    """
    providers = build_providers(config)
    guards = build_guards(config.resilience, providers, clock=clock or time.monotonic)
    return Gateway(
        router=Router(config.llm_routing, config.timeouts),
        providers=providers,
        mode=answering_mode(config.mode),
        mock_provider=config.mock_provider,
        allow_mode_header=config.allow_mode_header,
        limits=config.limits,
        retry=config.retry,
        guards=guards,
        fixtures=build_fixtures(config),
        record=config.mode == "record",
    )


def build_fixtures(config: GatewayConfig) -> FixtureStore | None:
    """The fixture folder of record and replay, read now (a broken file fails start-up); None when unused."""
    if config.mode not in ("record", "replay") and not config.allow_mode_header:
        return None
    store = FixtureStore(Path(config.fixtures_dir), secrets=secrets_of(config.providers))
    return opened_fixtures(store, mode=config.mode, folder_variable="LLM_FIXTURES_DIR")


class _Endpoints:
    """Request handlers bound to one Gateway; each logs exactly one line per request."""

    def __init__(self, gateway: Gateway, config: GatewayConfig, metrics: LLMMetrics) -> None:
        self.gateway = gateway
        self.metrics = metrics
        self.max_body = config.max_body_bytes
        self.health_timeout = config.health_timeout
        self.log = structlog.get_logger(component="llm_gateway")
        # The one line of every answered request, written without structlog's per-call layers.
        self.events = EventLog("llm_gateway")

    def _log(
        self,
        body: GenerateRequest | None,
        mode: Mode | None,
        started: float,
        response: GenerateResponse | None,
        error: GatewayError | None,
        *,
        stream: bool,
    ) -> None:
        self.metrics.observe_generation(body, response, error)
        latency_ms = round((perf_counter() - started) * 1000, 3)
        if response is not None:
            usage = response.usage
            self.events.write("info", "llm_request", {
                "role": response.role, "task": response.task, "mode": response.mode, "stream": stream,
                "latency_ms": latency_ms, "provider": response.provider, "model": response.model, "outcome": "ok",
                "attempts": len(response.attempts), "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
            })
            return
        assert error is not None
        fields: dict[str, Any] = {
            "role": body.role if body else None,
            "task": body.task if body else None,
            "mode": mode or self.gateway.mode,
            "stream": stream,
            "latency_ms": latency_ms,
        }
        attempts = error.details.get("attempts") or []
        last = attempts[-1] if attempts else None
        fields.update(provider=getattr(last, "provider", None), model=getattr(last, "model", None),
                      outcome=error.code, status=error.status, attempts=len(attempts))
        (self.log.warning if error.status >= 500 else self.log.info)("llm_request", **fields)

    async def generate(self, request: Request) -> Response:
        return await self._answer(request, stream=False)

    async def generate_stream(self, request: Request) -> Response:
        return await self._answer(request, stream=True)

    async def _answer(self, request: Request, *, stream: bool) -> Response:
        started = perf_counter()
        body: GenerateRequest | None = None
        mode: Mode | None = None
        try:
            headers = picked_headers(request.scope, _CALL_HEADERS)
            timeout = request_timeout(headers)
            body = await decode_body(request, _decode_request, max_bytes=self.max_body)
            mode = requested_mode(headers, allowed=self.gateway.allow_mode_header)
            scenario = requested_scenario(headers, mode=mode or self.gateway.mode, known=LLM_SCENARIOS)
            if stream:
                # Route and schema errors raise here, so before the stream starts they get their own status.
                pieces = self.gateway.stream(body, mode=mode, timeout=timeout, scenario=scenario)
                # Nothing is sent before the first piece exists, so a failure until then has its own status.
                try:
                    first = await first_item(pieces)
                except BaseException:
                    await pieces.aclose()
                    raise
            else:
                response = await self.gateway.generate(body, mode=mode, timeout=timeout, scenario=scenario)
        except GatewayError as err:
            self._log(body, mode, started, None, err, stream=stream)
            raise
        if stream:
            frames = self._frames(first, pieces, body, mode, started, request_id_of(request))
            return DeadlineStream(frames, deadline=pieces.deadline, on_cut=lambda: self._cut(body, mode, started))
        self._log(body, mode, started, response, None, stream=False)
        return MsgspecResponse(response)

    def _cut(self, body: GenerateRequest, mode: Mode | None, started: float) -> None:
        """The client did not read the stream before the deadline: it was cut, the generation closed."""
        label_request(role=body.role, task=body.task, outcome=STREAM_CUT)
        self.log.info(
            "llm_request", role=body.role, task=body.task, mode=mode or self.gateway.mode, stream=True,
            latency_ms=round((perf_counter() - started) * 1000, 3), outcome=STREAM_CUT,
            reason="the client did not read the stream before the deadline",
        )

    async def _frames(
        self,
        first: StreamDelta | GenerateResponse,
        pieces: GatewayStream,
        body: GenerateRequest,
        mode: Mode | None,
        started: float,
        request_id: str | None,
    ) -> AsyncGenerator[bytes, None]:
        try:
            async for item in resumed(first, pieces, more=isinstance(first, StreamDelta)):
                if isinstance(item, StreamDelta):
                    yield sse_event("delta", _encode(item))
                else:
                    self._log(body, mode, started, item, None, stream=True)
                    yield sse_event("done", _encode(item))
        except GatewayError as err:
            self._log(body, mode, started, None, err, stream=True)
            yield sse_event("error", _encode(ErrorEnvelope(error=err.to_body(request_id))))
        except Exception as exc:
            # The status line is already sent, so this is the outermost handler a stream has left.
            self.log.error("llm_stream_failed", exc_info=exc)
            yield sse_event("error", _encode(ErrorEnvelope(error=GatewayError("internal error").to_body(request_id))))
        finally:
            await pieces.aclose()

    async def routes(self, request: Request) -> Response:
        return Response(_encode(self.gateway.routing_table()), media_type=_JSON)

    async def healthz(self, request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=_JSON)

    async def readyz(self, request: Request) -> Response:
        failing = await self.gateway.check_ready(timeout=self.health_timeout)
        guards = self.gateway.guard_status()
        if failing:
            names = ", ".join(sorted(failing))
            raise NotReady(f"providers not ready: {names}", details={"providers": failing, "guards": guards})
        instances = {name: found for name, p in self.gateway.providers.items() if (found := p.instances())}
        ready = Readiness(status="ready", mode=self.gateway.mode, providers=guards, instances=instances)
        return Response(_encode(ready), media_type=_JSON)


def _instance_gauges(providers: Mapping[str, Provider]) -> dict[tuple[str, ...], float]:
    gauges: dict[tuple[str, ...], float] = {}
    for name, provider in providers.items():
        for url, state in provider.instances().items():
            gauges[(name, url, "up")] = 1.0 if state.get("up") else 0.0
            gauges[(name, url, "in_flight")] = float(state.get("in_flight") or 0)
    return gauges


def create_app(
    config: GatewayConfig,
    *,
    environ: Mapping[str, str] | None = None,
    metrics: LLMMetrics | None = None,
    reload_from: Path | None = None,
    clock: Clock | None = None,
) -> Starlette:
    """The ASGI app; providers start in the lifespan. CORS is deliberately absent: no browser origin is allowed.

    `metrics` defaults to a fresh registry of this app's own; with `reload_from`, SIGHUP re-reads that file
    (expanded with `environ`) and swaps the routing. `clock` drives the circuit breakers (tests).
    """
    gateway = build_gateway(config, clock=clock)
    embedder = build_embedder(config, gateway)
    metrics = metrics if metrics is not None else LLMMetrics()
    endpoints = _Endpoints(gateway, config, metrics)
    reloader = (
        None if reload_from is None else RoutingReloader(gateway, config, path=reload_from, environ=environ or {})
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await gateway.start()
            if reloader is not None:
                reloader.install()
            _freeze_heap()
            yield
        finally:
            if reloader is not None:
                reloader.uninstall()
            await gateway.close()

    routes = [
        Route("/api/v1/llm/generate", endpoints.generate, methods=["POST"]),
        Route("/api/v1/llm/generate/stream", endpoints.generate_stream, methods=["POST"]),
        Route("/api/v1/llm/routes", endpoints.routes, methods=["GET"]),
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/readyz", endpoints.readyz, methods=["GET"]),
        *openai_routes(gateway, max_body=config.max_body_bytes),
        *embed_routes(embedder, allow_mode_header=config.allow_mode_header, max_body=config.max_body_bytes),
        *openai_embedding_routes(embedder, allow_mode_header=config.allow_mode_header, max_body=config.max_body_bytes),
        openapi_route(llm_openapi(auth=bool(key_hashes(config.auth)))),
        metrics_route(metrics),
    ]
    app = Starlette(
        routes=routes,
        # The key check sits inside RequestMiddleware, so a 401 carries the request id too, is counted, and
        # says which mode answers (X-Generator-Mode), like every response.
        # CORS (only with `server.cors_origins`) sits outside the key check: a preflight carries no key.
        middleware=[
            Middleware(
                RequestMiddleware,
                metrics=metrics,
                header=mode_header(gateway.mode, allow_header=config.allow_mode_header),
            ),
            # Under /v1 every error is OpenAI's error object (auth, unknown paths and methods included).
            Middleware(OpenAIErrorMiddleware),
            *cors_middleware(config.server.origins),
            *auth_middleware(config.auth),
        ],
        exception_handlers=dict(error_handlers()),
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    metrics.track_breakers(
        lambda: {name: s.breaker.state for name, s in gateway.guard_status().items() if s.breaker is not None}
    )
    metrics.track("pdp_llm_instance", "Per instance of a pooled provider: up (1/0) and calls in flight.",
                  ("provider", "instance", "what"), lambda: _instance_gauges(gateway.providers))
    return app
