"""The LLM Gateway's `/openapi.json`: every endpoint, typed by the msgspec contracts it decodes and encodes."""

from __future__ import annotations

from typing import Any

from service_common.openapi import REQUEST_TIMEOUT, HeaderParam, Operation, openapi_document
from shared_contracts.embeddings import EmbedRequest, EmbedResponse
from shared_contracts.llm import GenerateRequest, GenerateResponse, RoutingTable
from shared_contracts.scenarios import LLM_SCENARIOS

from .openai_compat import ChatCompletionRequest
from .openai_wire import EmbeddingsRequest
from .readiness import Readiness

__all__ = ["llm_openapi"]

_MODE = HeaderParam("X-Generator-Mode", "mock, live or replay; honoured only with allow_mode_header: true. Every "
                    "response says the mode that answered in its own X-Generator-Mode header.",
                    {"type": "string", "enum": ["mock", "live", "replay"]})
_SCENARIO = HeaderParam(
    "X-Mock-Scenario", "Mock mode only (400 in any other): fail or slow down as a live provider would, "
    "`<name>[=<value>]`: " + "; ".join(f"{name}: {rule.summary}" for name, rule in LLM_SCENARIOS.items()) + ".",
    {"type": "string", "pattern": "^[a-z_]+(=[0-9.]+)?$"},
)
_GENERATE_ERRORS = (400, 404, 413, 422, 429, 502, 503, 504)
_OBJECT: dict[str, Any] = {"type": "object"}
# Each Server-Sent Event; `data` is the JSON text of a StreamDelta, a GenerateResponse or the error envelope.
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {"event": {"enum": ["delta", "done", "error"]}, "data": {"type": "string"}},
    "required": ["event", "data"],
}


# OpenAI's error object, as every error under /v1 is (llm_gateway/openai_errors.py).
_OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": ["string", "null"]},
        "code": {"type": ["string", "null"]}}, "required": ["message", "type", "param", "code"]}},
    "required": ["error"],
}
_OPENAI_ERRORS = ("Errors under /v1 are OpenAI's error object {\"error\": {\"message\", \"type\", \"param\", "
                  "\"code\"}}, with the gateway's status, Retry-After and x-request-id.")


def _operations() -> list[Operation]:
    generate_headers = (REQUEST_TIMEOUT, _MODE, _SCENARIO)
    return [
        Operation("POST", "/api/v1/llm/generate", "One complete answer for a role and task",
                  request=GenerateRequest, response=GenerateResponse, errors=_GENERATE_ERRORS,
                  headers=generate_headers, tags=("llm",)),
        Operation("POST", "/api/v1/llm/generate/stream", "The same answer as Server-Sent Events",
                  request=GenerateRequest, response_schema=_SSE_EVENT, media_type="text/event-stream",
                  errors=(400, 404, 413, 429, 503), headers=generate_headers, tags=("llm",),
                  description="`delta` events {\"text\"}, then one `done` event (GenerateResponse) or one `error` "
                              "event (the error envelope). Errors before the first event are JSON envelopes."),
        Operation("GET", "/api/v1/llm/routes", "The resolved routing table", response=RoutingTable, tags=("llm",)),
        Operation("POST", "/v1/chat/completions", "OpenAI-compatible chat completion (JSON or SSE with stream: true)",
                  request=ChatCompletionRequest, response_schema=_OBJECT, headers=(REQUEST_TIMEOUT, _MODE, _SCENARIO),
                  errors=_GENERATE_ERRORS, error_schema=_OPENAI_ERROR, tags=("openai",), description=_OPENAI_ERRORS),
        Operation("GET", "/v1/models", "Route aliases and models, OpenAI style", response_schema=_OBJECT,
                  error_schema=_OPENAI_ERROR, tags=("openai",), description=_OPENAI_ERRORS),
        Operation("POST", "/api/v1/llm/embed", "One vector per text, routed by embedding_routing",
                  request=EmbedRequest, response=EmbedResponse, errors=(400, 404, 413, 429, 502, 503, 504),
                  headers=generate_headers, tags=("llm",)),
        Operation("POST", "/v1/embeddings", "OpenAI-compatible embeddings (floats or base64)",
                  request=EmbeddingsRequest, response_schema=_OBJECT, headers=(REQUEST_TIMEOUT, _MODE),
                  errors=(400, 404, 413, 429, 502, 503, 504), error_schema=_OPENAI_ERROR, tags=("openai",),
                  description=_OPENAI_ERRORS),
        Operation("GET", "/v1/models/{model}", "One route alias or model, OpenAI style (404 model_not_found)",
                  response_schema=_OBJECT, errors=(400, 404), error_schema=_OPENAI_ERROR, tags=("openai",),
                  description=_OPENAI_ERRORS),
        Operation("GET", "/healthz", "The process is up",
                  response_schema={"type": "object", "properties": {"status": {"type": "string"}},
                                   "required": ["status"]},
                  tags=("health",), secured=False),
        Operation("GET", "/readyz", "Providers answer their health checks; breaker and backpressure state",
                  response=Readiness, errors=(503,), tags=("health",), secured=False),
        Operation("GET", "/metrics", "Prometheus metrics", response_schema={"type": "string"},
                  media_type="text/plain", tags=("health",), secured=False),
        Operation("GET", "/openapi.json", "This document", response_schema=_OBJECT, tags=("health",), secured=False),
    ]


def llm_openapi(*, auth: bool) -> dict[str, Any]:
    """The document; with `auth`, the secured operations require a Bearer key."""
    return openapi_document(
        title="LLM Gateway",
        version="1",
        description="Role/task routing to LLM providers, mock and live, one response shape and one error envelope.",
        operations=_operations(),
        auth=auth,
    )
