"""HTTP plumbing shared by the three Starlette apps: request ids, the error envelope, msgspec bodies."""

from __future__ import annotations

from collections.abc import Mapping
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
from .logging import bind_log_context, reset_log_context
from .tracing import parse_traceparent

__all__ = [
    "MsgspecResponse",
    "RequestIdMiddleware",
    "decode_body",
    "error_handlers",
    "request_id_of",
]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_log = structlog.get_logger(component="http")
# The outcome a request is counted and logged under when its client went away before it was answered.
CLIENT_DISCONNECTED = "client_disconnected"


class MsgspecResponse(Response):
    """A JSON response encoded by msgspec (Structs, dicts, lists)."""

    media_type = "application/json"

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


class RequestIdMiddleware:
    """Take `X-Request-ID` or make one, bind it to the logs, and echo it on every response.

    The W3C `traceparent` is read too: trace id, this request's span id and the caller's span are bound
    to the logs, and `service_common.tracing.outbound_headers()` passes them on to the next service.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        raw_trace = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw = value
            elif name == b"traceparent":
                raw_trace = value
        request_id = _clean_request_id(raw)
        trace = parse_traceparent(raw_trace)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["trace"] = trace
        header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = bind_log_context(
            request_id=request_id,
            trace_id=trace.trace_id,
            span_id=trace.span_id,
            parent_span_id=trace.parent_id,
            trace_flags=trace.flags,
        )
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            reset_log_context(token)


def request_id_of(request: Request) -> str | None:
    """The id RequestIdMiddleware bound to this request."""
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


def _refuse_declared_length(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"body of {declared} bytes exceeds the limit of {max_bytes}", details={"limit": max_bytes}
        )


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `max_bytes`."""
    _refuse_declared_length(request, max_bytes)
    return await _read_capped(request, max_bytes)


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body exceeds the limit of {max_bytes} bytes", details={"limit": max_bytes})
        chunks.append(chunk)
    return b"".join(chunks)


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
    declared = request.headers.get("content-type")
    if declared == "application/json":
        return
    if declared is not None and declared.partition(";")[0].strip().lower() == "application/json":
        return
    shown = declared[:100] if declared is not None else None
    raise UnsupportedMediaType(
        f"the body must be sent as Content-Type: application/json, not {shown or 'no content type'}",
        details={"content_type": shown, "expected": "application/json"},
    )


async def decode_body(request: Request, decoder: msgspec.json.Decoder[T], *, max_bytes: int) -> T:
    """Refuse a declared length over the cap (413) or a body that is not JSON (415), read with a cap, decode."""
    _refuse_declared_length(request, max_bytes)
    require_json(request)
    return decode_payload(await _read_capped(request, max_bytes), decoder)


__all__ += ["CLIENT_DISCONNECTED", "decode_payload", "error_response", "read_body", "require_json"]
