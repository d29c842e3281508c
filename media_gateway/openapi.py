"""The Media Gateway's `/openapi.json`: every endpoint, typed by the msgspec contracts it decodes and encodes."""

from __future__ import annotations

from typing import Any

import msgspec

from service_common.openapi import REQUEST_TIMEOUT, HeaderParam, Operation, openapi_document
from shared_contracts.media import ImageRequest, Job, WorkflowInfo
from shared_contracts.scenarios import MEDIA_SCENARIOS

from .store import StoreHealth

__all__ = ["JobStoreHealth", "MediaReadiness", "ProviderQueue", "WorkflowList", "media_openapi"]


class WorkflowList(msgspec.Struct, kw_only=True):
    """`GET /api/v1/media/workflows`."""

    workflows: list[WorkflowInfo]


class InstanceQueue(msgspec.Struct, kw_only=True):
    """One instance of a pooled provider: its socket, the jobs bound to it (all replicas), its own queue."""

    websocket: str
    jobs: int
    max_in_flight: int
    queue: int


class ProviderQueue(msgspec.Struct, kw_only=True):
    """Jobs one provider holds now, its bound (None: unbounded), and its event socket (ComfyUI only)."""

    jobs: int
    max_jobs: int | None
    # `connected`, `connecting`, `down`, or `idle` (not needed yet: mock mode); None for providers without one.
    websocket: str | None = None
    # Per instance of a pool (ComfyUI), keyed by base URL; absent for providers without instances.
    instances: dict[str, InstanceQueue] | None = None


class JobStoreHealth(msgspec.Struct, kw_only=True):
    """Whether the job database took the last save; `error` is why not."""

    writable: bool
    error: str | None = None


class MediaReadiness(msgspec.Struct, kw_only=True):
    """`GET /readyz` (200 when ready; the same fields are the 503 envelope's `details` when not)."""

    status: str
    mode: str
    providers: dict[str, ProviderQueue]
    store: StoreHealth
    job_store: JobStoreHealth


_MODE = HeaderParam("X-Generator-Mode", "mock, live or replay; honoured only with allow_mode_header: true. Every "
                    "response says the mode that answered in its own X-Generator-Mode header.",
                    {"type": "string", "enum": ["mock", "live", "replay"]})
_SCENARIO = HeaderParam(
    "X-Mock-Scenario", "Mock mode only (400 in any other): `<name>[=<value>]`: "
    + "; ".join(f"{name}: {rule.summary}" for name, rule in MEDIA_SCENARIOS.items()) + ".",
    {"type": "string", "pattern": "^[a-z_]+(=[0-9.]+)?$"},
)
_OBJECT: dict[str, Any] = {"type": "object"}
_STATUS = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
_IMAGE = {"type": "string", "format": "binary"}


def _operations() -> list[Operation]:
    jobs = "/api/v1/media/jobs/{job_id}"
    return [
        Operation("POST", "/api/v1/media/image/generate", "Render images; waits for the job unless wait is false",
                  request=ImageRequest, response=Job, also=(202,),
                  errors=(400, 404, 409, 413, 422, 429, 502, 503, 504, 507),
                  headers=(REQUEST_TIMEOUT, _MODE, _SCENARIO), tags=("media",),
                  description="wait: true answers 200 with the finished Job or the error envelope within the "
                              "deadline (503 shutting_down when the gateway stops first: the job is kept and "
                              "the restarted gateway finishes it); wait: false answers 202 with the queued Job "
                              "and a Location header."),
        Operation("GET", jobs, "A job's current state", response=Job, errors=(404,), tags=("media",)),
        Operation("DELETE", jobs, "Cancel a queued or running job", response=Job, errors=(404, 409), tags=("media",)),
        Operation("GET", jobs + "/events", "A job's progress as Server-Sent Events", response_schema={"type": "string"},
                  media_type="text/event-stream", errors=(404,), tags=("media",),
                  description="`progress` events {id, status, progress}, then one `job` event with the final "
                              "Job (an `error` event with the envelope when the gateway shuts down first)."),
        Operation("GET", "/api/v1/media/images/{image_id}", "A stored image's bytes", response_schema=_IMAGE,
                  media_type="image/png", errors=(404,), tags=("media",),
                  description="PNG, JPEG or WebP by the stored type; ETag and If-None-Match (304) supported."),
        Operation("GET", "/api/v1/media/workflows", "The configured workflows and their parameters",
                  response=WorkflowList, tags=("media",)),
        Operation("GET", "/healthz", "The process is up", response_schema=_STATUS, tags=("health",), secured=False),
        Operation("GET", "/readyz", "The image backends answer (ComfyUI: HTTP and its WebSocket), the image and "
                  "job stores are writable; jobs held per provider", response=MediaReadiness,
                  errors=(503,), tags=("health",), secured=False),
        Operation("GET", "/metrics", "Prometheus metrics", response_schema={"type": "string"},
                  media_type="text/plain", tags=("health",), secured=False),
        Operation("GET", "/openapi.json", "This document", response_schema=_OBJECT, tags=("health",), secured=False),
    ]


def media_openapi(*, auth: bool) -> dict[str, Any]:
    """The document; with `auth`, the secured operations require a Bearer key."""
    return openapi_document(
        title="Media Gateway",
        version="1",
        description="Image jobs on ComfyUI (or mock), stored and served by the gateway, one error envelope.",
        operations=_operations(),
        auth=auth,
    )
