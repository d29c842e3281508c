"""The orchestrator's `/openapi.json`: every endpoint, typed by the msgspec contracts it decodes and encodes."""

from __future__ import annotations

from typing import Any

from service_common.openapi import REQUEST_TIMEOUT, HeaderParam, Operation, openapi_document
from shared_contracts.flows import RunDocument, RunList, RunRequest

__all__ = ["orchestrator_openapi"]

_OBJECT: dict[str, Any] = {"type": "object"}
_STATUS = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
_LIMIT = HeaderParam(
    "limit", "How many recent runs (1 to runs.recent_limit).", {"type": "string", "pattern": "^[0-9]+$"}
)


def _operations(flow: str) -> list[Operation]:
    return [
        Operation("POST", f"/api/v1/flows/{flow}/runs", "Run the P0 flow for one product",
                  request=RunRequest, response=RunDocument, also=(202,), errors=(400, 413, 504),
                  headers=(REQUEST_TIMEOUT,), tags=("flows",),
                  description="wait: true answers 200 with the run document (succeeded or failed) or 504 "
                              "upstream_timeout when the deadline passes; wait: false answers 202 and a Location."),
        Operation("GET", "/api/v1/runs", "Recent runs, newest first", response=RunList, errors=(400,),
                  query=(_LIMIT,), tags=("flows",)),
        Operation("GET", "/api/v1/runs/{run_id}", "One run document", response=RunDocument, errors=(404,),
                  tags=("flows",)),
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
