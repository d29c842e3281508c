"""OpenAI's error contract on `/v1/...`: one table from every gateway error code to OpenAI's `type` and `code`.

The native API keeps its envelope (`{"error": {"code", "message", "details", "request_id"}}`). Under `/v1`
every error, whoever raised it (a handler, the API-key check, an unknown path, a wrong method), is rewritten
by `OpenAIErrorMiddleware` into `{"error": {"message", "type", "param", "code"}}`, as the OpenAI SDKs read it:
the status stays the gateway's (SDKs pick their exception class from it), `Retry-After` and `x-request-id`
are kept, and `x-should-retry` tells the SDKs whether a retry can help (they retry 5xx, 408, 409 and 429
otherwise, an `upstream_rejected` 502 included). `param` names the request field in OpenAI's terms
(`temperature`, `messages[1].content`, `tools[0].function.parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_contracts.errors import ERROR_CODES, ErrorBody, decode_envelope

__all__ = ["OPENAI_ERRORS", "OpenAIErrorMiddleware", "openai_error", "openai_param"]

OPENAI_ERRORS: Mapping[str, tuple[str, str]] = {
    # gateway code: (OpenAI `type`, OpenAI `code`)
    "invalid_request": ("invalid_request_error", "invalid_request"),
    "unauthorized": ("authentication_error", "invalid_api_key"),
    "not_found": ("not_found_error", "not_found"),
    "no_route": ("not_found_error", "model_not_found"),
    "fixture_missing": ("not_found_error", "fixture_missing"),
    "method_not_allowed": ("invalid_request_error", "method_not_allowed"),
    "request_timeout": ("timeout", "request_timeout"),
    "conflict": ("invalid_request_error", "conflict"),
    "payload_too_large": ("invalid_request_error", "payload_too_large"),
    "unsupported_media_type": ("invalid_request_error", "unsupported_media_type"),
    "invalid_output": ("api_error", "invalid_output"),
    "invalid_workflow": ("invalid_request_error", "invalid_workflow"),
    "rate_limited": ("rate_limit_error", "rate_limit_exceeded"),
    "overloaded": ("rate_limit_error", "overloaded"),
    "headers_too_large": ("invalid_request_error", "headers_too_large"),
    "internal_error": ("server_error", "internal_error"),
    "upstream_error": ("api_error", "upstream_error"),
    "upstream_unauthorized": ("api_error", "upstream_unauthorized"),
    "upstream_rejected": ("api_error", "upstream_rejected"),
    "upstream_timeout": ("timeout", "upstream_timeout"),
    "provider_unavailable": ("server_error", "provider_unavailable"),
    "not_ready": ("server_error", "not_ready"),
    "shutting_down": ("server_error", "shutting_down"),
    "storage_error": ("server_error", "storage_error"),
}
"""Every gateway error code (shared_contracts.errors.ERROR_CODES) → OpenAI's error `type` and `code`."""

# The native request's paths that are named differently in a Chat Completions request.
_NATIVE_PARAMS = (
    ("$.options.", ""),
    ("$.response_schema", "response_format.json_schema.schema"),
    ("$.role", "model"),
    ("$.task", "model"),
    ("$.quality", "model"),
)
_encode = msgspec.json.Encoder().encode


def openai_param(details: Mapping[str, Any]) -> str | None:
    """The request field an error is about, in OpenAI's terms: `$.options.temperature` → `temperature`."""
    param = details.get("param")
    if isinstance(param, str):
        return param
    path = details.get("path") or details.get("field")
    if not isinstance(path, str) or path in ("$", ""):
        return None
    for native, ours in _NATIVE_PARAMS:
        if path.startswith(native):
            path = ours + path[len(native) :]
            break
    path = path.removeprefix("$.")
    if path.startswith("tools[") and path.endswith("].parameters"):
        path = path.removesuffix("parameters") + "function.parameters"
    elif path.startswith("tools[") and path.endswith("].name"):
        path = path.removesuffix("name") + "function.name"
    elif path == "tool_choice.name":
        path = "tool_choice.function.name"
    return path or None


def openai_error(body: ErrorBody) -> dict[str, Any]:
    """The `error` object OpenAI's SDKs read, for a gateway error body."""
    kind, code = OPENAI_ERRORS.get(body.code, ("api_error", body.code))
    # Only a request error is about a field; an invalid answer's path is a place in the answer, not a param.
    param = openai_param(body.details) if kind in ("invalid_request_error", "not_found_error") else None
    return {"message": body.message, "type": kind, "param": param, "code": code}


def _retryable(code: str) -> bool:
    cls = ERROR_CODES.get(code)
    return cls is not None and cls.retryable


class OpenAIErrorMiddleware:
    """Pure ASGI: under `/v1`, a JSON error envelope becomes OpenAI's error object; everything else passes."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/v1") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        parts: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400 and _is_json(message):
                held = message  # the body decides: sent once it is whole and rewritten
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            start, body = _converted(held, b"".join(parts))
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def _is_json(message: Message) -> bool:
    for name, value in message.get("headers", []):
        if name.lower() == b"content-type":
            return bool(value.startswith(b"application/json"))
    return False


def _converted(start: Message, raw: bytes) -> tuple[Message, bytes]:
    envelope = decode_envelope(raw)
    if envelope is None:
        return start, raw
    body = _encode({"error": openai_error(envelope.error)})
    headers = [(n, v) for n, v in start.get("headers", []) if n.lower() not in (b"content-length", b"x-should-retry")]
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"x-should-retry", b"true" if _retryable(envelope.error.code) else b"false"))
    return {**start, "headers": headers}, body
