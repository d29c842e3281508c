"""W3C trace context (`traceparent`) for logs and for calls to other services.

Each request handled here is one span: its trace id comes from the caller's `traceparent` (or is new),
its span id is new, and the caller's span is kept as the parent. All three are bound to the log
context (`service_common.logging.bind_log_context`) with the request id, so every log line carries
them and `outbound_headers()` can pass them on to the next service.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .ids import new_hex
from .logging import log_context

__all__ = ["TRACEPARENT_HEADER", "TraceContext", "outbound_headers", "parse_traceparent"]

TRACEPARENT_HEADER = "traceparent"

# version 00: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"; a later version may append fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class TraceContext(NamedTuple):
    """This request's span: `parent_id` is the caller's span, or None when the trace starts here."""

    trace_id: str
    span_id: str
    parent_id: str | None
    flags: str

    @property
    def traceparent(self) -> str:
        """The header value naming this span as the parent of a call made from it."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def _new_span_id() -> str:
    span = new_hex(8)
    # An all-zero id is invalid (W3C §3.2.2.3); one in 2**64, but then the next one.
    return span if span != _ZERO_SPAN else _new_span_id()


def parse_traceparent(raw: bytes | None) -> TraceContext:
    """This request's span under the caller's `traceparent`; an absent or invalid header starts a trace.

    >>> parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").trace_id
    '4bf92f3577b34da6a3ce929d0e0e4736'
    """
    if raw:
        match = _TRACEPARENT.fullmatch(raw.decode("latin-1").strip().lower())
        # Version ff is forbidden, version 00 has no extra fields, all-zero ids are invalid (W3C §3.2.2).
        if match and match.group(1) != "ff" and not (match.group(1) == "00" and match.group(5)):
            _, trace_id, parent_id, flags, _ = match.groups()
            if trace_id != _ZERO_TRACE and parent_id != _ZERO_SPAN:
                return TraceContext(trace_id, _new_span_id(), parent_id, flags)
    trace_id = new_hex(16)
    return TraceContext(trace_id if trace_id != _ZERO_TRACE else new_hex(16), _new_span_id(), None, "01")


def outbound_headers() -> dict[str, str]:
    """`X-Request-ID` and `traceparent` for a call made while handling the current request (empty outside one)."""
    bound = log_context()
    headers: dict[str, str] = {}
    request_id = bound.get("request_id")
    if isinstance(request_id, str):
        headers["x-request-id"] = request_id
    trace_id, span_id = bound.get("trace_id"), bound.get("span_id")
    if isinstance(trace_id, str) and isinstance(span_id, str):
        headers[TRACEPARENT_HEADER] = f"00-{trace_id}-{span_id}-{bound.get('trace_flags', '01')}"
    return headers
