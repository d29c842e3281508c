"""The orchestrator's `/openapi.json`: every endpoint, typed by the msgspec contracts it decodes and encodes."""

from __future__ import annotations

from typing import Any

from orchestrator.pages.session import ConsoleLogin
from service_common.openapi import REQUEST_TIMEOUT, HeaderParam, Operation, openapi_document
from shared_contracts.flows import RunDocument, RunList, RunRequest

__all__ = ["orchestrator_openapi"]

_OBJECT: dict[str, Any] = {"type": "object"}
_STATUS = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
_LIMIT = HeaderParam(
    "limit", "How many recent runs (1 to runs.recent_limit).", {"type": "string", "pattern": "^[0-9]+$"}
)
_STATUS_FILTER = HeaderParam(
    "status", "Only runs with this status.", {"type": "string", "enum": ["running", "succeeded", "failed"]}
)
_SAMPLE = HeaderParam("sample", "Preload the start form with this sample product (e.g. ko_tumbler).")
_COMPARE = HeaderParam(
    "run", "Two run ids: /compare?run=A&run=B.", {"type": "array", "items": {"type": "string"}}
)
_HTML = {"type": "string"}
_BINARY = {"type": "string", "format": "binary"}
_EVENTS = (
    "Server-Sent Events: `step_started` and `step_finished` (data: StepEvent, `{run_id, step}` with the step "
    "record), then `run_finished` (data: RunFinishedEvent, `{run_id, status, mode, duration_ms, failed_step, "
    "error}`), after which the stream ends. A new connection first replays what already happened, so a "
    "client that reconnects sees every step; a step that never ran (an earlier one failed) gets only "
    "`step_finished` with status `skipped`. Comment lines (`: keep-alive`) come every few seconds."
)
_PAGE = "HTML for browsers (Accept: text/html also gets HTML error pages); programs get the error envelope."


def _operations(flow: str) -> list[Operation]:
    return [
        Operation("POST", f"/api/v1/flows/{flow}/runs", "Run the P0 flow for one product",
                  request=RunRequest, response=RunDocument, also=(202,), errors=(400, 413, 504),
                  headers=(REQUEST_TIMEOUT,), tags=("flows",),
                  description="wait: true answers 200 with the run document (succeeded or failed) or 504 "
                              "upstream_timeout when the deadline passes; wait: false answers 202 and a Location."),
        Operation("GET", "/api/v1/runs", "Recent runs, newest first", response=RunList, errors=(400,),
                  query=(_LIMIT, _STATUS_FILTER), tags=("flows",)),
        Operation("GET", "/api/v1/runs/{run_id}", "One run document", response=RunDocument, errors=(404,),
                  tags=("flows",)),
        Operation("GET", "/api/v1/runs/{run_id}/events", "Follow a run live (SSE)", response_schema=_HTML,
                  media_type="text/event-stream", errors=(404,), tags=("flows",), description=_EVENTS),
        Operation("GET", "/", "The console: start a run, follow it, recent runs", response_schema=_HTML,
                  media_type="text/html", errors=(400,), query=(_STATUS_FILTER, _SAMPLE), tags=("pages",),
                  description=_PAGE),
        Operation("GET", "/runs/{run_id}", "A run's product detail page and inside view", response_schema=_HTML,
                  media_type="text/html", errors=(404,), tags=("pages",), description=_PAGE),
        Operation("GET", "/runs/{run_id}/images/{image_id}", "A run image, kept with the run",
                  response_schema=_BINARY, media_type="image/png", errors=(404, 502, 503, 504), tags=("pages",),
                  description="The copy kept with the run (content-addressed; PNG, JPEG or WebP as the image "
                              "says). An image not kept yet is fetched from the Media Gateway once and kept."),
        Operation("GET", "/runs/{run_id}/export", "The run as a folder that opens from disk (zip)",
                  response_schema=_BINARY, media_type="application/zip", errors=(404,), tags=("pages",),
                  description="`<run_id>/index.html`, `console.css`, `images/…`, `run.json`."),
        Operation("GET", "/compare", "Two runs side by side", response_schema=_HTML, media_type="text/html",
                  errors=(400, 404), query=(_COMPARE,), tags=("pages",), description=_PAGE),
        Operation("GET", "/docs", "This API, as a page for people", response_schema=_HTML, media_type="text/html",
                  tags=("pages",), secured=False),
        Operation("GET", "/static/console.css", "The console's style sheet", response_schema=_HTML,
                  media_type="text/css", tags=("pages",), secured=False),
        Operation("GET", "/static/console.js", "The console's script", response_schema=_HTML,
                  media_type="text/javascript", tags=("pages",), secured=False),
        Operation("GET", "/static/favicon.svg", "The console's icon", response_schema=_HTML,
                  media_type="image/svg+xml", tags=("pages",), secured=False),
        Operation("POST", "/api/v1/console/session", "Enter an API key once for a browser session",
                  request=ConsoleLogin, response_schema=_STATUS, errors=(400, 401, 413), tags=("pages",),
                  secured=False,
                  description="Sets the HttpOnly, SameSite=Strict session cookie the console's pages, images "
                              "and event streams are then answered on; the cookie holds an HMAC, never the key."),
        Operation("DELETE", "/api/v1/console/session", "End this browser's console session",
                  response_schema=_STATUS, tags=("pages",), secured=False),
        Operation("GET", "/healthz", "The process is up", response_schema=_STATUS, tags=("health",), secured=False),
        Operation("GET", "/readyz", "Both gateways are ready", response_schema=_OBJECT, errors=(503,),
                  tags=("health",), secured=False),
        Operation("GET", "/metrics", "Prometheus metrics", response_schema={"type": "string"},
                  media_type="text/plain", tags=("health",), secured=False),
        Operation("GET", "/openapi.json", "This document", response_schema=_OBJECT, tags=("health",), secured=False),
    ]


def orchestrator_openapi(flow: str, *, auth: bool) -> dict[str, Any]:
    """The document; with `auth`, the secured operations require a Bearer key."""
    return openapi_document(
        title="Orchestrator",
        version="1",
        description="The six agents and the P0 product-detail flow, over the LLM and Media gateways.",
        operations=_operations(flow),
        auth=auth,
    )
