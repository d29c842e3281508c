"""The error envelope and the one tree of client-visible errors.

GatewayError (internal_error 500)
 ├── InvalidRequest (invalid_request 400)
 ├── Unauthorized (unauthorized 401)
 ├── NotFound (not_found 404)
 │    ├── NoRoute (no_route 404)
 │    └── FixtureMissing (fixture_missing 404)
 ├── MethodNotAllowed (method_not_allowed 405)
 ├── RequestTimeout (request_timeout 408)
 ├── Conflict (conflict 409)
 ├── PayloadTooLarge (payload_too_large 413)
 ├── UnsupportedMediaType (unsupported_media_type 415)
 ├── InvalidOutput (invalid_output 422)
 ├── InvalidWorkflow (invalid_workflow 422)
 ├── RateLimited (rate_limited 429)
 │    └── Overloaded (overloaded 429)
 ├── HeadersTooLarge (headers_too_large 431)
 ├── UpstreamError (upstream_error 502)
 │    ├── UpstreamUnauthorized (upstream_unauthorized 502)
 │    ├── UpstreamRejected (upstream_rejected 502)
 │    └── UpstreamTimeout (upstream_timeout 504)
 ├── ProviderUnavailable (provider_unavailable 503)
 ├── NotReady (not_ready 503)
 │    └── ShuttingDown (shutting_down 503)
 └── StorageError (storage_error 507)

Every class has a stable `code` and an HTTP `status`; the services register one handler on the base.
`error_from_body` turns a received envelope back into the matching class, so clients raise typed errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from ._base import Outbound

__all__ = [
    "Conflict",
    "ErrorBody",
    "FixtureMissing",
    "ErrorEnvelope",
    "GatewayError",
    "HeadersTooLarge",
    "InvalidOutput",
    "InvalidRequest",
    "InvalidWorkflow",
    "MethodNotAllowed",
    "NoRoute",
    "NotFound",
    "NotReady",
    "Overloaded",
    "PayloadTooLarge",
    "ProviderUnavailable",
    "RateLimited",
    "RequestTimeout",
    "ShuttingDown",
    "StorageError",
    "Unauthorized",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnauthorized",
    "ERROR_CODES",
    "error_from_body",
]


class ErrorBody(Outbound):
    """The inner object of the envelope; also a failed media job's `error`."""

    code: str
    message: str
    details: dict[str, Any] = {}
    request_id: str | None = None


class ErrorEnvelope(Outbound):
    """`{"error": {...}}`: the only shape an error ever has on the wire."""

    error: ErrorBody


class GatewayError(Exception):
    """Base of every client-visible error; `code` and `status` are part of the public API."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    # Whether a caller (a router's fallback, a client's retry) may try again elsewhere or later.
    retryable: ClassVar[bool] = False
    # The envelope a peer service sent, when this error was rebuilt from one by `error_from_body`.
    envelope: ErrorBody | None = None

    def __init__(
        self,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after = retry_after

    def to_body(self, request_id: str | None = None) -> ErrorBody:
        """The envelope's inner object for this error."""
        return ErrorBody(code=self.code, message=self.message, details=self.details, request_id=request_id)


class InvalidRequest(GatewayError):
    """The body or a parameter is malformed; `details` says where."""

    code, status = "invalid_request", 400


class Unauthorized(GatewayError):
    """Missing or wrong API key."""

    code, status = "unauthorized", 401


class NotFound(GatewayError):
    """No such resource (job, image, run)."""

    code, status = "not_found", 404


class NoRoute(NotFound):
    """No routing rule matches the request's role, task and quality."""

    code, status = "no_route", 404


class FixtureMissing(NotFound):
    """Replay mode has no recorded answer for this request; `details` names the key and the closest one."""

    code, status = "fixture_missing", 404


class MethodNotAllowed(GatewayError):
    """The path exists, but not for this method; the `Allow` header lists the ones it has."""

    code, status = "method_not_allowed", 405


class RequestTimeout(GatewayError):
    """The client took longer than the server allows to send the request's headers or body."""

    code, status = "request_timeout", 408


class Conflict(GatewayError):
    """The resource is in a state that forbids the operation (e.g. cancelling a finished job)."""

    code, status = "conflict", 409


class PayloadTooLarge(GatewayError):
    """The body exceeds the configured cap."""

    code, status = "payload_too_large", 413


class UnsupportedMediaType(GatewayError):
    """The body is not `application/json` (a cross-origin form post, a text/plain body)."""

    code, status = "unsupported_media_type", 415


class InvalidOutput(GatewayError):
    """The model's answer did not parse or validate against `response_schema`, even after a repair."""

    code, status = "invalid_output", 422


class InvalidWorkflow(GatewayError):
    """The image backend rejected the workflow graph; `details` names the node and input."""

    code, status = "invalid_workflow", 422


class RateLimited(GatewayError):
    """Too many requests; `retry_after` says when to come back."""

    code, status = "rate_limited", 429
    retryable = True


class Overloaded(RateLimited):
    """The provider's in-flight limit and wait queue are full."""

    code, status = "overloaded", 429


class HeadersTooLarge(GatewayError):
    """The request's header section (or trailers) is over the byte or count cap; `details` names the limit."""

    code, status = "headers_too_large", 431


class UpstreamError(GatewayError):
    """The provider answered with an error or an unusable body."""

    code, status = "upstream_error", 502
    retryable = True


class UpstreamUnauthorized(UpstreamError):
    """The provider refused our credentials: a configuration problem, not worth a retry."""

    code, status = "upstream_unauthorized", 502
    retryable = False


class UpstreamRejected(UpstreamError):
    """The provider refused this request itself (unknown model, bad parameter, safety block, no quota)."""

    code, status = "upstream_rejected", 502
    retryable = False


class UpstreamTimeout(UpstreamError):
    """The provider did not answer before the deadline."""

    code, status = "upstream_timeout", 504


class ProviderUnavailable(GatewayError):
    """The provider cannot be reached (connection refused, DNS, circuit open)."""

    code, status = "provider_unavailable", 503
    retryable = True


class NotReady(GatewayError):
    """A dependency of this service is not ready; `details` names it."""

    code, status = "not_ready", 503


class ShuttingDown(NotReady):
    """The service is stopping; the work was not finished here (a restarted service may resume it)."""

    code, status = "shutting_down", 503
    retryable = True


class StorageError(GatewayError):
    """The service could not write what it must keep (a full or read-only disk, an unreachable bucket)."""

    code, status = "storage_error", 507


def _all_subclasses(cls: type[GatewayError]) -> list[type[GatewayError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


ERROR_CODES: Mapping[str, type[GatewayError]] = {cls.code: cls for cls in _all_subclasses(GatewayError)}
"""Every stable error code and its class."""


def error_from_body(body: ErrorBody, *, retry_after: float | None = None) -> GatewayError:
    """Rebuild the typed error a peer service sent, keeping its message and details."""
    cls = ERROR_CODES.get(body.code, GatewayError)
    err = cls(body.message, details=body.details, retry_after=retry_after)
    if cls is GatewayError and body.code != GatewayError.code:
        err.details.setdefault("code", body.code)
    err.envelope = body
    return err


_decode_envelope = msgspec.json.Decoder(ErrorEnvelope)


def decode_envelope(raw: bytes) -> ErrorEnvelope | None:
    """The envelope in `raw`, or None when the bytes are not one."""
    try:
        return _decode_envelope.decode(raw)
    except msgspec.DecodeError:
        return None


__all__ += ["decode_envelope"]
