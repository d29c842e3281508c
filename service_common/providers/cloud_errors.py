"""Error bodies of the cloud APIs (OpenAI, Anthropic, Gemini) mapped onto the shared error tree.

Each mapper has the `ErrorMapper` shape `(name, status, raw, headers) -> GatewayError`:
- 401/403 and a bad key → `UpstreamUnauthorized` (the upstream text is dropped: it may quote the key);
- a 429 that is a rate limit → `RateLimited` with `retry_after`; a 429 that is an exhausted quota →
  `UpstreamRejected`;
- 408/409/5xx/529 (overloaded) → `UpstreamError` (retryable); other 4xx → `UpstreamRejected`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from shared_contracts.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnauthorized,
)

from ..retry import retry_after_seconds

__all__ = ["anthropic_error", "gemini_error", "openai_error"]

_MAX_MESSAGE = 300


class _OpenAIError(msgspec.Struct):
    message: str = ""
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class _OpenAIBody(msgspec.Struct):
    error: _OpenAIError


class _AnthropicError(msgspec.Struct):
    type: str = ""
    message: str = ""


class _AnthropicBody(msgspec.Struct):
    error: _AnthropicError


class _GeminiDetail(msgspec.Struct, rename={"type_": "@type"}):
    type_: str = ""
    reason: str | None = None
    retryDelay: str | None = None  # noqa: N815 (wire name)


class _GeminiError(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""
    details: list[_GeminiDetail] = []


class _GeminiBody(msgspec.Struct):
    error: _GeminiError


def _decode(raw: bytes, type_: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.DecodeError:
        # msgspec.ValidationError subclasses DecodeError: a body of the wrong shape is also "no body".
        return None


def _classify(
    name: str,
    status: int,
    message: str,
    details: dict[str, Any],
    *,
    unauthorized: bool = False,
    rate_limited: bool = False,
    retry_after: float | None = None,
) -> GatewayError:
    details = {"provider": name, "status": status, **{k: v for k, v in details.items() if v is not None}}
    if unauthorized or status in (401, 403):
        return UpstreamUnauthorized(f"{name}: the provider refused our credentials", details=details)
    text = f"{name}: {message[:_MAX_MESSAGE]}" if message else f"{name} answered HTTP {status}"
    if rate_limited:
        return RateLimited(text, details=details, retry_after=retry_after)
    if status in (408, 409) or status >= 500:
        return UpstreamError(text, details=details, retry_after=retry_after)
    return UpstreamRejected(text, details=details)


def openai_error(name: str, status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """`{"error": {message, type, param, code}}`; 429 `insufficient_quota` is final, other 429s are retryable."""
    body = _decode(raw, _OpenAIBody)
    err = body.error if body is not None else _OpenAIError()
    quota = "insufficient_quota" in (err.code, err.type)
    return _classify(
        name,
        status,
        err.message,
        {"type": err.type, "code": err.code, "param": err.param},
        unauthorized=err.code == "invalid_api_key",
        rate_limited=status == 429 and not quota,
        retry_after=retry_after_seconds(headers),
    )


def anthropic_error(name: str, status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """`{"type": "error", "error": {type, message}}`; 429 and 529 `overloaded_error` are retryable."""
    body = _decode(raw, _AnthropicBody)
    err = body.error if body is not None else _AnthropicError()
    return _classify(
        name,
        status,
        err.message,
        {"type": err.type or None},
        unauthorized=err.type in ("authentication_error", "permission_error"),
        rate_limited=status == 429 or err.type == "rate_limit_error",
        retry_after=retry_after_seconds(headers),
    )


def gemini_error(name: str, status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """`{"error": {code, message, status, details}}`; 400 `API_KEY_INVALID` is a bad key, 429 carries `retryDelay`."""
    body = _decode(raw, _GeminiBody)
    err = body.error if body is not None else _GeminiError()
    reasons = [d.reason for d in err.details if d.reason]
    delays = [_duration(d.retryDelay) for d in err.details if d.retryDelay]
    retry_after = next((d for d in delays if d is not None), None)
    return _classify(
        name,
        status,
        err.message,
        {"type": err.status or None, "reason": reasons[0] if reasons else None},
        unauthorized="API_KEY_INVALID" in reasons or err.status in ("UNAUTHENTICATED", "PERMISSION_DENIED"),
        rate_limited=status == 429 or err.status == "RESOURCE_EXHAUSTED",
        retry_after=retry_after if retry_after is not None else retry_after_seconds(headers),
    )


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def _duration(text: str) -> float | None:
    # google.protobuf.Duration in JSON: "43s", "1.5s".
    match = _DURATION.match(text.strip())
    return float(match.group(1)) if match else None
