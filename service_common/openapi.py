"""`/openapi.json` built from the msgspec contracts: each service lists its operations, this renders OpenAPI 3.1.

Schemas come from `msgspec.json.schema_components`, so the document cannot drift from the types the
service really decodes and encodes. Every operation that can fail documents its error statuses with the
one error envelope.

    ops = [Operation("POST", "/api/v1/llm/generate", "One answer", request=GenerateRequest,
                     response=GenerateResponse, errors=(400, 404, 413, 502, 503, 504))]
    routes.append(openapi_route(openapi_document(title="LLM Gateway", version="1", operations=ops)))
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared_contracts.errors import ErrorEnvelope

from .deadline import TIMEOUT_HEADER

__all__ = ["OPENAPI_PATH", "HeaderParam", "Operation", "openapi_document", "openapi_route"]

OPENAPI_PATH = "/openapi.json"
_REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class HeaderParam:
    """An optional request header an operation reads."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


REQUEST_ID = HeaderParam("X-Request-ID", "Kept when short and printable, else one is made; echoed in the response.")
REQUEST_TIMEOUT = HeaderParam(
    "X-Request-Timeout",
    "Seconds this call may take; shortens, never lengthens, the configured deadline. Invalid values get 400.",
    {"type": "string", "pattern": r"^[0-9]{1,6}(\.[0-9]{1,6})?$"},
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One method + path: its JSON request type, its success body, and the statuses it answers with the envelope.

    `response` is a msgspec type (a Struct, `dict[str, Any]`, ...) or None with `response_schema` for
    bodies without a type (e.g. text). `media_type` is the success body's content type.
    """

    method: str
    path: str
    summary: str
    request: Any = None
    response: Any = None
    response_schema: Mapping[str, Any] | None = None
    media_type: str = "application/json"
    status: int = 200
    errors: tuple[int, ...] = ()
    headers: tuple[HeaderParam, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    # False for health, metrics and this document: they are answered without an API key.
    secured: bool = True
    # Optional query parameters (`?limit=`); `{name}` segments of `path` are documented as path parameters.
    query: tuple[HeaderParam, ...] = ()
    # Other success statuses with the same body (e.g. 202 for a job accepted without waiting).
    also: tuple[int, ...] = ()
    # The error body's schema when it is not the envelope (a front that speaks another API's error shape).
    error_schema: Mapping[str, Any] | None = None


def openapi_document(
    *,
    title: str,
    version: str,
    operations: Sequence[Operation],
    description: str | None = None,
    auth: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document; with `auth`, secured operations require a Bearer key and may answer 401."""
    types: list[Any] = [ErrorEnvelope]
    for op in operations:
        types += [t for t in (op.request, op.response) if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    by_type = dict(zip(map(_key, types), schemas, strict=True))
    envelope = by_type[_key(ErrorEnvelope)]
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, by_type, envelope, auth=auth)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, **({"description": description} if description else {})},
        "paths": paths,
        "components": {"schemas": components},
    }
    if auth:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return document


def _key(type_: Any) -> str:
    return repr(type_)


def _operation(op: Operation, by_type: Mapping[str, Any], envelope: Any, *, auth: bool) -> dict[str, Any]:
    body_schema = by_type[_key(op.response)] if op.response is not None else dict(op.response_schema or {})
    responses: dict[str, Any] = {
        str(op.status): {
            "description": HTTPStatus(op.status).phrase,
            "content": {op.media_type: {"schema": body_schema}},
            "headers": {"X-Request-ID": {"schema": {"type": "string"}}},
        }
    }
    for extra in op.also:
        responses[str(extra)] = {**responses[str(op.status)], "description": HTTPStatus(extra).phrase}
    errors = set(op.errors)
    if op.headers and any(h.name == REQUEST_TIMEOUT.name for h in op.headers):
        errors.add(400)
    if auth and op.secured:
        errors.add(401)
    if op.request is not None:
        errors.add(415)  # service_common.http.require_json: a JSON body must say so
    for status in sorted(errors):
        responses[str(status)] = {
            "description": f"{HTTPStatus(status).phrase}: the error envelope",
            "content": {"application/json": {"schema": dict(op.error_schema) if op.error_schema else envelope}},
        }
        if status in (429, 503):
            responses[str(status)]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    spec: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "parameters": [
            *(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PATH_PARAM.findall(op.path)
            ),
            *(
                {
                    "name": q.name,
                    "in": "query",
                    "required": False,
                    "description": q.description,
                    "schema": dict(q.schema),
                }
                for q in op.query
            ),
            *(
                {
                    "name": h.name,
                    "in": "header",
                    "required": False,
                    "description": h.description,
                    "schema": dict(h.schema),
                }
                for h in (REQUEST_ID, *op.headers)
            ),
        ],
        "responses": responses,
    }
    if op.description:
        spec["description"] = op.description
    if op.tags:
        spec["tags"] = list(op.tags)
    if op.request is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": by_type[_key(op.request)]}},
        }
    if auth:
        spec["security"] = [{"bearer": []}] if op.secured else []
    return spec


def _operation_id(op: Operation) -> str:
    words = [w for w in op.path.replace("{", "").replace("}", "").replace(".", "_").split("/") if w]
    return "_".join([op.method.lower(), *(w.replace("-", "_") for w in words)])


def openapi_route(document: Mapping[str, Any]) -> Route:
    """`GET /openapi.json` serving `document`, encoded once."""
    body = _encode(document)

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Route(OPENAPI_PATH, endpoint, methods=["GET"])


__all__ += ["REQUEST_ID", "REQUEST_TIMEOUT", "TIMEOUT_HEADER"]
