"""The JSON log line: the bound request context on every line, the same keys structlog's processors gave."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import structlog

from service_common.logging import (
    JsonLineRenderer,
    LineWriter,
    bind_log_context,
    bound_log_context,
    log_context,
    merge_log_context,
    reset_log_context,
)


def _logger(out: io.StringIO) -> Any:
    return structlog.wrap_logger(
        structlog.WriteLogger(out),
        processors=[merge_log_context, JsonLineRenderer(service="svc")],
        wrapper_class=structlog.make_filtering_bound_logger(0),
        component="unit",
    )


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_carries_the_bound_context_level_timestamp_and_service() -> None:
    out = io.StringIO()
    log = _logger(out)
    with bound_log_context(request_id="r-1", trace_id="t" * 32):
        log.info("llm_request", outcome="ok", request_id="own-wins")
        log.warning("slow", latency_ms=1.5)
    log.info("outside")
    first, second, outside = _lines(out)
    assert first["request_id"] == "own-wins" and first["trace_id"] == "t" * 32
    assert first | {"timestamp": None} == {
        "request_id": "own-wins", "trace_id": "t" * 32, "component": "unit", "outcome": "ok",
        "event": "llm_request", "service": "svc", "level": "info", "timestamp": None}
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert second["level"] == "warning" and second["request_id"] == "r-1" and second["latency_ms"] == 1.5
    assert "request_id" not in outside and outside["service"] == "svc"


def test_exceptions_are_formatted_and_odd_values_still_render() -> None:
    out = io.StringIO()
    log = _logger(out)
    try:
        raise ValueError("broken")
    except ValueError:
        log.exception("failed", thing=object(), huge=2**80)
    (line,) = _lines(out)
    assert line["level"] == "error" and "ValueError: broken" in line["exception"]
    assert line["thing"].startswith("<object object") and line["huge"] == 2**80
    assert "exc_info" not in line


async def test_binding_is_per_task_and_reset_restores_the_outer_context() -> None:
    outer = bind_log_context(request_id="outer")
    try:
        async def inner(name: str) -> str:
            token = bind_log_context(request_id=name, span_id=name)
            await asyncio.sleep(0)
            seen = dict(log_context())
            reset_log_context(token)
            return f"{seen['request_id']}/{seen['span_id']}"

        assert list(await asyncio.gather(inner("a"), inner("b"))) == ["a/a", "b/b"]
        assert log_context() == {"request_id": "outer"}
    finally:
        reset_log_context(outer)
    assert log_context() == {}


async def test_lines_of_one_loop_turn_leave_together_when_the_turn_ends() -> None:
    out = io.StringIO()
    writer = LineWriter(out)
    writer.write(b'{"n":1}')
    writer.write(b'{"n":2}')
    assert out.getvalue() == ""  # still this turn: nothing written yet
    await asyncio.sleep(0)
    assert out.getvalue() == '{"n":1}\n{"n":2}\n'


def test_outside_a_loop_a_line_is_written_at_once() -> None:
    out = io.StringIO()
    LineWriter(out).write(b'{"n":1}')
    assert out.getvalue() == '{"n":1}\n'


def test_a_flush_left_on_a_loop_closed_mid_turn_does_not_hold_later_lines() -> None:
    out = io.StringIO()
    writer = LineWriter(out)
    loop = asyncio.new_event_loop()

    def last_callback() -> None:
        writer.write(b'{"n":1}')  # its flush is scheduled for the next turn, which never comes
        loop.stop()

    loop.call_soon(last_callback)
    loop.run_forever()
    loop.close()
    assert out.getvalue() == ""

    async def later() -> None:
        writer.write(b'{"n":2}')
        await asyncio.sleep(0)

    asyncio.run(later())
    assert out.getvalue() == '{"n":1}\n{"n":2}\n'
    writer.write(b'{"n":3}')
    assert out.getvalue().endswith('{"n":3}\n')

