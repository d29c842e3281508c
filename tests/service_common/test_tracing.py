"""Trace context: traceparent parsing, binding to logs through RequestMiddleware, outbound headers."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.types import Message, Receive, Scope, Send

from service_common.http import RequestMiddleware
from service_common.logging import log_context, merge_log_context
from service_common.tracing import outbound_headers, parse_traceparent

CALLER = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_caller_trace_is_continued_with_a_new_span() -> None:
    trace = parse_traceparent(CALLER)
    assert trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace.parent_id == "00f067aa0ba902b7"
    assert trace.flags == "01"
    assert len(trace.span_id) == 16 and trace.span_id != trace.parent_id
    assert trace.traceparent == f"00-{trace.trace_id}-{trace.span_id}-01"


def test_future_versions_may_carry_extra_fields() -> None:
    assert (
        parse_traceparent(CALLER.replace(b"00-", b"01-", 1) + b"-extra").trace_id == parse_traceparent(CALLER).trace_id
    )


def test_invalid_headers_start_a_new_trace() -> None:
    for raw in (
        None,
        b"",
        b"garbage",
        b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        b"00-4BF92F3577B34DA6A3CE929D0E0E473-00f067aa0ba902b7-01",
    ):
        trace = parse_traceparent(raw)
        assert trace.parent_id is None, raw
        assert len(trace.trace_id) == 32 and trace.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_outbound_headers_are_empty_outside_a_request() -> None:
    assert log_context() == {}
    assert outbound_headers() == {}


async def _call(headers: dict[str, str]) -> tuple[dict[str, Any], list[tuple[bytes, bytes]]]:
    """Run one request through RequestMiddleware around a raw ASGI app that logs and records."""
    seen: dict[str, Any] = {}
    response_headers: list[tuple[bytes, bytes]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        structlog.get_logger().info("handled")
        seen["bound"] = dict(log_context())
        seen["outbound"] = outbound_headers()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            response_headers.extend(message["headers"])

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "method": "GET", "path": "/", "headers": raw_headers}
    await RequestMiddleware(inner)(scope, receive, send)
    return seen, response_headers


async def test_middleware_binds_trace_and_request_id_and_passes_them_on() -> None:
    with structlog.testing.capture_logs(processors=[merge_log_context]) as logs:
        seen, headers = await _call({"x-request-id": "qa-1", "traceparent": CALLER.decode()})
    assert (b"x-request-id", b"qa-1") in headers
    bound = seen["bound"]
    assert bound["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert bound["parent_span_id"] == "00f067aa0ba902b7"
    assert seen["outbound"] == {
        "x-request-id": "qa-1",
        "traceparent": f"00-4bf92f3577b34da6a3ce929d0e0e4736-{bound['span_id']}-01",
    }
    (line,) = [entry for entry in logs if entry["event"] == "handled"]
    assert line["request_id"] == "qa-1" and line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert log_context().get("trace_id") is None, "the binding must end with the request"


async def test_middleware_starts_a_trace_when_none_is_sent() -> None:
    first, _ = await _call({})
    second, _ = await _call({})
    assert first["bound"]["parent_span_id"] is None
    assert first["bound"]["trace_id"] != second["bound"]["trace_id"]
