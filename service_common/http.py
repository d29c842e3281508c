"""HTTP plumbing shared by the three Starlette apps: the request middleware, the error envelope, msgspec bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, TypeVar

import msgspec
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_contracts.errors import (
    ErrorEnvelope,
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

from .ids import new_id
from .logging import bind_request_context, reset_log_context
from .metrics import Metrics, request_labels, reset_request_labels
from .tracing import parse_traceparent

__all__ = [
    "HeaderHook",
    "MsgspecResponse",
    "RequestMiddleware",
    "decode_body",
    "error_handlers",
    "request_id_of",
]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_log = structlog.get_logger(component="http")
# The outcome a request is counted and logged under when its client went away before it was answered.
CLIENT_DISCONNECTED = "client_disconnected"


_JSON_TYPE = (b"content-type", b"application/json")


class MsgspecResponse(Response):
    """A JSON response encoded by msgspec (Structs, dicts, lists)."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> None:
        if headers is not None:
            super().__init__(content, status_code, headers)
            return
        # The common case made directly: Starlette's init_headers does a general job on every response.
        self.status_code = status_code
        self.body = _encoder.encode(content)
        self.background = None
        self.raw_headers = [(b"content-length", str(len(self.body)).encode("ascii")), _JSON_TYPE]

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def _clean_request_id(raw: bytes | None) -> str:
    # A caller's id is kept only when it is short and printable, so it cannot inject into logs or headers.
    if raw:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if 0 < len(text) <= 128 and all(c.isalnum() or c in "-_.:" for c in text):
            return text
    return new_id()


HeaderHook = Callable[[Scope], tuple[bytes, bytes]]
"""`hook(scope) -> (name, value)`: one more header for every response of a request (e.g. the generator mode)."""


class RequestMiddleware:
    """Everything every request needs at the edge, in one layer (pure ASGI, one wrapped `send`):

    - `X-Request-ID` taken (when short and printable) or made, bound to the logs, echoed on every response;
    - the W3C `traceparent` read: trace id, this request's span id and the caller's span bound to the logs,
      so `service_common.tracing.outbound_headers()` passes them on to the next service;
    - with `metrics`, the request counted in flight, then once by endpoint and outcome with its latency;
    - with `header`, one more response header computed from the request (e.g. `X-Generator-Mode`).

    One layer instead of three: each layer wraps `send` and costs every request a few microseconds.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics | None = None, header: HeaderHook | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.header = header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        raw = None
        raw_trace = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw = value
            elif name == b"traceparent":
                raw_trace = value
        request_id = _clean_request_id(raw)
        trace = parse_traceparent(raw_trace)
        scope.setdefault("state", {})["request_id"] = request_id
        added = [(b"x-request-id", request_id.encode("ascii"))]
        if self.header is not None:
            added.append(self.header(scope))
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        token = bind_request_context(request_id, trace.trace_id, trace.span_id, trace.parent_id, trace.flags)
        metrics = self.metrics
        if metrics is None:
            try:
                await self.app(scope, receive, send_with_headers)
            finally:
                reset_log_context(token)
            return
        metrics.requests_in_flight += 1
        labels, labels_token = request_labels()
        raised: str | None = None
        try:
            await self.app(scope, receive, send_with_headers)
        except asyncio.CancelledError:
            raised = "canceled"
            raise
        except Exception:
            # Starlette's ServerErrorMiddleware sits outside us: it answers 500 after we have seen this.
            raised = GatewayError.code
            raise
        finally:
            reset_request_labels(labels_token)
            reset_log_context(token)
            metrics.requests_in_flight -= 1
            metrics.end_request(scope, labels, status, raised, perf_counter() - started)


def request_id_of(request: Request) -> str | None:
    """The id RequestMiddleware bound to this request."""
    state = request.scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def error_response(err: GatewayError, request_id: str | None) -> Response:
    """The envelope for `err`, with `Retry-After` when the error carries one."""
    headers: dict[str, str] = {}
    if err.retry_after is not None:
        headers["retry-after"] = str(max(1, int(err.retry_after + 0.999)))
    body = ErrorEnvelope(error=err.to_body(request_id))
    return MsgspecResponse(body, status_code=err.status, headers=headers)


def _note_error_code(request: Request, code: str) -> None:
    # Read back by the metrics middleware, so a failed request is counted under its stable code.
    request.scope.setdefault("state", {})["error_code"] = code


async def _on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    _note_error_code(request, exc.code)
    return error_response(exc, request_id_of(request))


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    err: GatewayError
    if exc.status_code == 404:
        err = NotFound(f"no such endpoint: {request.method} {request.url.path}")
    elif exc.status_code == 405:
        err = MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}")
    else:
        err = GatewayError(str(exc.detail))
    _note_error_code(request, err.code)
    response = error_response(err, request_id_of(request))
    response.status_code = exc.status_code
    response.headers.update(exc.headers or {})
    return response


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # The one place a bare Exception is caught: log it in full, tell the client nothing internal.
    _log.error("unhandled_error", path=request.url.path, exc_info=exc)
    _note_error_code(request, GatewayError.code)
    return error_response(GatewayError("internal error"), request_id_of(request))


async def _on_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client closed the connection before its request was read in full: a cancellation, not our failure.
    # The edge may have noted why it cut the client off (a body past `body_timeout_s`); otherwise it left.
    state = request.scope.setdefault("state", {})
    code = state.setdefault("error_code", CLIENT_DISCONNECTED)
    _log.info("request_abandoned", path=request.url.path, method=request.method, outcome=code)
    # Nobody reads this answer (uvicorn drops writes to a closed connection); 499 is nginx's "client closed".
    return Response(status_code=499)


def error_handlers() -> Mapping[Any, Any]:
    """Starlette `exception_handlers` that put every error in the envelope (a vanished client gets none)."""
    return {
        GatewayError: _on_gateway_error,
        HTTPException: _on_http_exception,
        ClientDisconnect: _on_client_disconnect,
        Exception: _on_unexpected,
    }


def _refuse_declared_length(declared: bytes | None, max_bytes: int) -> None:
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"body of {declared.decode()} bytes exceeds the limit of {max_bytes}", details={"limit": max_bytes}
        )


def _body_headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    # Content-Type and Content-Length in one pass over the raw headers (Starlette's Headers scans per name).
    content_type = content_length = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            content_length = value
    return content_type, content_length


def picked_headers(scope: Scope, names: frozenset[bytes]) -> dict[str, str]:
    """The request's headers named in `names` (lower-case), in one pass: `{"x-request-timeout": "2.5"}`."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"] if name in names}


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `max_bytes`."""
    _refuse_declared_length(_body_headers(request.scope)[1], max_bytes)
    return await _read_capped(request, max_bytes)


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    # The ASGI messages read directly (what Starlette's request.stream() does, without its generator).
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body exceeds the limit of {max_bytes} bytes", details={"limit": max_bytes})
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decode_payload(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode a client body; a syntax or schema problem is a 400 naming the field."""
    if not raw.strip():
        raise InvalidRequest("request body is empty; a JSON object is expected")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = message.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in message else "$"
        raise InvalidRequest(f"invalid request: {message}", details={"path": path}) from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        # msgspec stops at the interpreter's recursion limit: `[[[[...]]]]` is a client error, not a crash.
        raise InvalidRequest("request body nests too deeply") from exc


def require_json(request: Request) -> None:
    """415 unless the body is declared `application/json` (parameters such as `charset=utf-8` allowed).

    A browser sends a cross-origin `text/plain`, form or untyped POST without asking first (no CORS
    preflight), so a JSON API that took such bodies could be driven by any web page its users visit.
    """
    _require_json(_body_headers(request.scope)[0])


def _require_json(raw: bytes | None) -> None:
    if raw == b"application/json":
        return
    declared = raw.decode("latin-1") if raw is not None else None
    if declared is not None and declared.partition(";")[0].strip().lower() == "application/json":
        return
    shown = declared[:100] if declared is not None else None
    raise UnsupportedMediaType(
        f"the body must be sent as Content-Type: application/json, not {shown or 'no content type'}",
        details={"content_type": shown, "expected": "application/json"},
    )


async def decode_body(request: Request, decoder: msgspec.json.Decoder[T], *, max_bytes: int) -> T:
    """Refuse a declared length over the cap (413) or a body that is not JSON (415), read with a cap, decode."""
    content_type, content_length = _body_headers(request.scope)
    _refuse_declared_length(content_length, max_bytes)
    _require_json(content_type)
    return decode_payload(await _read_capped(request, max_bytes), decoder)


__all__ += ["CLIENT_DISCONNECTED", "decode_payload", "error_response", "picked_headers", "read_body", "require_json"]
