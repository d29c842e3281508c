"""The Media Gateway's ASGI app: `/api/v1/media/*`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

CORS is deliberately absent: no browser origin is allowed to call the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import TypedDict

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service_common.auth import auth_middleware, key_hashes
from service_common.config import ConfigError
from service_common.cors import cors_middleware
from service_common.deadline import effective_timeout, request_timeout
from service_common.http import MsgspecResponse, RequestMiddleware, decode_body, error_handlers, request_id_of
from service_common.metrics import label_request, metrics_route
from service_common.modes import answering_mode, mode_header, requested_scenario
from service_common.openapi import openapi_route
from service_common.postgres import replica_name
from service_common.providers import build_providers
from service_common.sse import sse_event, sse_response
from shared_contracts.errors import (
    Conflict,
    ErrorEnvelope,
    GatewayError,
    NotFound,
    NotReady,
    UpstreamTimeout,
    error_from_body,
)
from shared_contracts.media import ImageRequest, Job, JobEvent
from shared_contracts.scenarios import MEDIA_SCENARIOS

from .config import MediaConfig
from .fixtures import build_fixtures
from .jobs import FINAL, JobRegistry, JobRunner, MemoryJobRegistry
from .leases import LeaseKeeper
from .metrics import MediaMetrics
from .openapi import InstanceQueue, JobStoreHealth, MediaReadiness, ProviderQueue, media_openapi
from .pg_jobs import PostgresJobRegistry
from .providers.base import MediaProvider
from .s3_store import S3ImageStore
from .service import IMAGES_PATH, MediaService
from .sqlite_jobs import SqliteJobRegistry
from .store import ImageStore, LocalImageStore, is_image_id
from .workflows import load_workflows

__all__ = ["AppState", "ShutdownHook", "create_app"]

JOBS_PATH = "/api/v1/media/jobs/"
_decode_request = msgspec.json.Decoder(ImageRequest)
_encode = msgspec.json.Encoder()
_IMMUTABLE = "public, max-age=31536000, immutable"
_READY_BUDGET_S = 5.0


class AppState(TypedDict):
    """What the lifespan puts on `request.state`."""

    service: MediaService


def _service(request: Request) -> MediaService:
    service: MediaService = request.state.service
    return service


def _base_url(request: Request) -> str:
    configured = _service(request).config.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


def _present(job: Job, base: str) -> Job:
    """The job with absolute image URLs; stored URLs are paths, so any host or proxy prefix works."""
    images = [msgspec.structs.replace(img, url=base + img.url) for img in job.images]
    return msgspec.structs.replace(job, images=images)


async def generate(request: Request) -> Response:
    service = _service(request)
    requested = request_timeout(request.headers)
    body = await decode_body(request, _decode_request, max_bytes=service.config.max_body_bytes)
    mode = service.mode_for(request.headers)
    scenario = requested_scenario(request.headers, mode=mode, known=MEDIA_SCENARIOS)
    # X-Request-Timeout may shorten the job's deadline (queueing included), never lengthen it.
    timeout = effective_timeout(service.timeout_for(mode), requested)
    label_request(role=body.role, task=body.task)
    job = await service.submit(body, mode=mode, request_id=request_id_of(request), timeout=timeout, scenario=scenario)
    # The workflow is the Media Gateway's "model": request series split by it like the LLM Gateway's.
    label_request(role=body.role, task=body.task, provider=job.provider, model=job.workflow)
    base = _base_url(request)
    if not body.wait:
        return MsgspecResponse(_present(job, base), status_code=202, headers={"location": base + JOBS_PATH + job.id})
    job = await service.runner.wait(job.id, timeout=timeout)
    if job.status == "succeeded":
        return MsgspecResponse(_present(job, base))
    if job.error is not None:
        raise error_from_body(job.error)
    if job.status == "canceled":
        raise Conflict(f"job {job.id} was canceled", details={"job_id": job.id})
    raise UpstreamTimeout(f"the job did not finish within {timeout:.1f} s", details={"job_id": job.id})


async def get_job(request: Request) -> Response:
    job = await _service(request).runner.get(request.path_params["job_id"])
    return MsgspecResponse(_present(job, _base_url(request)))


async def cancel_job(request: Request) -> Response:
    job = await _service(request).runner.cancel(request.path_params["job_id"])
    return MsgspecResponse(_present(job, _base_url(request)))


async def job_events(request: Request) -> Response:
    runner = _service(request).runner
    job_id = request.path_params["job_id"]
    await runner.get(job_id)  # an unknown id is a 404 envelope, not an empty stream
    base = _base_url(request)

    async def frames() -> AsyncIterator[bytes]:
        try:
            async for job in runner.follow(job_id):
                if job.status in FINAL:
                    yield sse_event("job", _encode.encode(_present(job, base)))
                else:
                    event = JobEvent(id=job.id, status=job.status, progress=job.progress)
                    yield sse_event("progress", _encode.encode(event))
        except GatewayError as exc:
            # The gateway shuts down before the job ends: the stream ends with the envelope, not a cut.
            yield sse_event("error", _encode.encode(ErrorEnvelope(error=exc.to_body(request_id_of(request)))))

    return sse_response(frames())


async def get_image(request: Request) -> Response:
    image_id = request.path_params["image_id"]
    store = _service(request).store
    if not is_image_id(image_id):
        raise NotFound("no such image", details={"image_id": image_id[:80]})
    # The id is the sha256 of the bytes, so the ETag is known before anything is read.
    etag = f'"{image_id}"'
    headers = {"etag": etag, "cache-control": _IMMUTABLE}
    wanted = request.headers.get("if-none-match", "")
    if wanted.strip() == "*" or etag in [tag.strip().removeprefix("W/") for tag in wanted.split(",")]:
        if not await store.exists(image_id):
            raise NotFound("no such image", details={"image_id": image_id})
        return Response(status_code=304, headers=headers)
    direct = store.redirect_url(image_id)
    if direct is not None:
        # The bucket serves the bytes; the redirect itself must not outlive the presigned URL in caches.
        return RedirectResponse(direct, status_code=307, headers={"cache-control": "private, max-age=60"})
    found = await store.get(image_id)
    if found is None:
        raise NotFound("no such image", details={"image_id": image_id})
    meta, data = found
    return Response(data, media_type=meta.mime_type, headers=headers)


async def list_workflows(request: Request) -> Response:
    return MsgspecResponse({"workflows": _service(request).workflow_infos()})


async def healthz(request: Request) -> Response:
    return MsgspecResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the live backends answer (ComfyUI: HTTP and its WebSocket) and both stores take writes."""
    service = _service(request)
    problem: GatewayError | None = None
    if service.mode == "live":
        deadline = asyncio.get_running_loop().time() + _READY_BUDGET_S
        names = sorted({wf.spec.provider for wf in service.workflows.values()})
        for name in names:
            provider = service.providers[name]
            if provider.kind == "live":
                try:
                    await provider.health(deadline=deadline)
                except GatewayError as exc:
                    problem = problem or exc
    store = await service.store.health()
    job_store = JobStoreHealth(writable=service.runner.store_error is None, error=service.runner.store_error)
    held = service.held()
    queues = {}
    for name, provider in service.providers.items():
        capacity = provider.capacity()
        queues[name] = ProviderQueue(jobs=held.get(name, 0), max_jobs=capacity.max_jobs if capacity else None,
                                     websocket=provider.status().get("websocket"),
                                     instances=await _instance_queues(service, name, provider))
    report = MediaReadiness(status="ready", mode=service.mode, providers=queues, store=store,
                            job_store=job_store)
    if problem is None and not store.writable:
        problem = NotReady(f"the image store is not writable ({store.error})")
    if problem is None and not job_store.writable:
        problem = NotReady(f"the job store refuses writes ({job_store.error})")
    if problem is not None:
        details = msgspec.to_builtins(msgspec.structs.replace(report, status="not_ready"))
        raise NotReady(problem.message, details={**problem.details, **details})
    return MsgspecResponse(report)


ROUTES = [
    Route("/api/v1/media/image/generate", generate, methods=["POST"]),
    Route(JOBS_PATH + "{job_id}", get_job, methods=["GET"]),
    Route(JOBS_PATH + "{job_id}", cancel_job, methods=["DELETE"]),
    Route(JOBS_PATH + "{job_id}/events", job_events, methods=["GET"]),
    Route(IMAGES_PATH + "{image_id}", get_image, methods=["GET", "HEAD"]),
    Route("/api/v1/media/workflows", list_workflows, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]


def _queue_depth(runner: JobRunner, providers: Iterable[str]) -> dict[tuple[str, ...], float]:
    depth: dict[tuple[str, ...], float] = {(name, state): 0.0 for name in providers for state in ("queued", "running")}
    for job in runner.active():
        if job.status in ("queued", "running"):
            depth[(job.provider, job.status)] = depth.get((job.provider, job.status), 0.0) + 1
    return depth


async def _instance_queues(
    service: MediaService, name: str, provider: MediaProvider
) -> dict[str, InstanceQueue] | None:
    states = provider.instances()
    if not states:
        return None
    try:
        bound = await service.slots.held(name)
    except GatewayError:
        bound = {}
    return {
        instance: InstanceQueue(websocket=str(state.get("websocket")), jobs=bound.get(instance, 0),
                                max_in_flight=int(state.get("max_in_flight") or 0), queue=int(state.get("queue") or 0))
        for instance, state in states.items()
    }


def _instance_states(providers: Mapping[str, MediaProvider]) -> dict[tuple[str, ...], float]:
    states: dict[tuple[str, ...], float] = {}
    for name, provider in providers.items():
        for instance, state in provider.instances().items():
            states[(name, instance, "up")] = 1.0 if state.get("websocket") == "connected" else 0.0
            states[(name, instance, "queue")] = float(state.get("queue") or 0)
    return states


def _image_store(config: MediaConfig) -> ImageStore:
    bucket = config.store.bucket
    if bucket is None:
        return LocalImageStore(Path(config.store.dir))
    presign = config.store.presign_ttl_s if config.store.presigned_urls else 0
    try:
        return S3ImageStore(bucket, config.store.s3, presign_s=presign)
    except ValueError as exc:
        raise ConfigError(f"store.s3: {exc}") from exc


def _registry(config: MediaConfig) -> JobRegistry:
    jobs = config.jobs
    if jobs.shared:
        return PostgresJobRegistry(
            jobs.url, owner=replica_name(), lease_s=jobs.lease_s, max_jobs=jobs.max_jobs,
            retention_s=jobs.retention_s, slot_poll_s=jobs.poll_s, pool_size=jobs.pool_size,
        )
    if jobs.registry == "sqlite":
        return SqliteJobRegistry(jobs.sqlite_file(config.store), max_jobs=jobs.max_jobs, retention_s=jobs.retention_s)
    return MemoryJobRegistry(max_jobs=jobs.max_jobs, retention_s=jobs.retention_s)


class ShutdownHook:
    """Called by the server when SIGTERM arrives, before it waits for in-flight requests (`serve(on_exit=)`).

    Jobs start draining at once (see `JobRunner.begin_drain`), so every `wait: true` client is answered
    (its result, or 503 `shutting_down`) within `jobs.shutdown_grace_s`, never cut by the server's own
    graceful timeout. `create_app` puts one on `app.state.begin_shutdown`.
    """

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.runner: JobRunner | None = None
        self.requested = False

    def __call__(self) -> None:
        self.requested = True
        if self.runner is not None:
            self.runner.begin_drain(self.grace_s)

    def attach(self, runner: JobRunner | None) -> None:
        """The lifespan's runner (None once it stopped); a SIGTERM that came during start-up applies now."""
        self.runner = runner
        if runner is not None and self.requested:
            runner.begin_drain(self.grace_s)


def create_app(
    config: MediaConfig, *, environ: Mapping[str, str] | None = None, metrics: MediaMetrics | None = None
) -> Starlette:
    """Build the app; workflows and providers are validated now, so bad YAML fails before serving.

    `environ` is accepted for symmetry with the other services; the YAML loader already expanded it.
    `metrics` defaults to a fresh registry of this app's own, served at `GET /metrics`.
    """
    del environ
    media_metrics = metrics if metrics is not None else MediaMetrics()
    workflows = load_workflows(config.workflows, base_dir=Path(config.base_dir))
    providers = build_providers(config.providers, MediaProvider)  # type: ignore[type-abstract]  # YAML names it
    store = _image_store(config)
    registry = _registry(config)
    fixtures = build_fixtures(config)
    shutdown = ShutdownHook(config.jobs.shutdown_grace_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        runner = JobRunner(registry, on_final=media_metrics.observe_job, poll_s=config.jobs.poll_s)
        media_metrics.track_queue(lambda: _queue_depth(runner, providers))
        media_metrics.track_instances(lambda: _instance_states(providers))
        async with contextlib.AsyncExitStack() as stack:
            await registry.open()
            stack.push_async_callback(registry.close)
            await store.start()
            stack.push_async_callback(store.close)
            for provider in providers.values():
                await provider.start()
                stack.push_async_callback(provider.close)
            # Closed first on shutdown: jobs end or are handed over while providers still run.
            stack.push_async_callback(functools.partial(runner.close, grace_s=config.jobs.shutdown_grace_s))
            stack.callback(shutdown.attach, None)
            service = MediaService(
                config, workflows=workflows, providers=providers, store=store, runner=runner, fixtures=fixtures
            )
            await service.recover(registry)
            if registry.shared:
                leases = LeaseKeeper(registry, runner, service, heartbeat_s=config.jobs.heartbeat_s)
                leases.start()
                # Stopped before the runner drains, so nothing is adopted while this replica shuts down.
                stack.push_async_callback(leases.close)
            shutdown.attach(runner)
            yield {"service": service}

    app = Starlette(
        routes=[
            *ROUTES,
            openapi_route(media_openapi(auth=bool(key_hashes(config.auth)))),
            metrics_route(media_metrics),
        ],
        lifespan=lifespan,
        # The key check sits inside RequestMiddleware, so a 401 carries the request id too, is counted, and
        # says which mode answers (X-Generator-Mode), like every response.
        # CORS (only with `server.cors_origins`) sits outside the key check: a preflight carries no key.
        middleware=[
            Middleware(
                RequestMiddleware,
                metrics=media_metrics,
                header=mode_header(answering_mode(config.mode), allow_header=config.allow_mode_header),
            ),
            *cors_middleware(config.server.origins),
            *auth_middleware(config.auth),
        ],
        exception_handlers=dict(error_handlers()),
    )
    app.state.begin_shutdown = shutdown
    return app

