"""The LLM Gateway against faulty Ollama and OpenAI-compatible upstreams, over real HTTP on 127.0.0.1.

Each case: the documented error code in the envelope, no wait past the deadline (X-Request-Timeout,
with the harness allowing only a margin more), the fallback used where one is configured, and the
same gateway answering again once the upstream is healthy.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.ollama import Fault

from ._support import (
    KINDS,
    REPLY,
    STREAM,
    Kind,
    error_of,
    gateway,
    live_config,
    outcomes,
    post,
    section_for,
    still_answers,
    stream_events,
    upstream,
)

pytestmark = pytest.mark.parametrize("kind", KINDS)


async def test_refused_connection_is_provider_unavailable_then_the_fallback_answers(
    kind: Kind, refused_port: int
) -> None:
    dead = section_for(kind, f"http://127.0.0.1:{refused_port}")
    async with upstream(kind) as backup:
        async with gateway(live_config({"dead": dead})) as client:
            reply = await post(client, timeout=3)
            assert reply.status == 503
            error = error_of(reply)
            assert error["code"] == "provider_unavailable"
            assert outcomes(error["details"]["attempts"]) == ["provider_unavailable"]
        async with gateway(live_config({"dead": dead, "backup": backup.section()}, fallbacks=("backup",))) as client:
            reply = await post(client, timeout=3)
            assert reply.status == 200, reply.body
            answer = reply.json()
            assert answer["provider"] == "backup"
            assert outcomes(answer["attempts"]) == ["provider_unavailable", "ok"]


async def test_stalled_upstream_answers_upstream_timeout_at_the_callers_deadline(kind: Kind) -> None:
    async with upstream(kind) as up, gateway(live_config({"up": up.section()}, timeout=60)) as client:
        up.set_fault(Fault(delay=60))
        reply = await post(client, timeout=0.5)
        assert reply.status == 504
        error = error_of(reply)
        assert error["code"] == "upstream_timeout"
        # The 60 s route deadline was shortened by the header, not the other way round.
        assert error["details"]["timeout_s"] == 0.5
        assert outcomes(error["details"]["attempts"]) == ["upstream_timeout"]
        await still_answers(client, up)


async def test_a_stream_stalled_before_its_first_piece_is_a_504_at_the_deadline(kind: Kind) -> None:
    # Issue 15: nothing is sent before the first piece, so this is an HTTP 504, no longer a 200 + error event.
    async with upstream(kind) as up, gateway(live_config({"up": up.section()}, timeout=60)) as client:
        up.set_fault(Fault(chunk_delay=60))
        reply = await post(client, STREAM, timeout=0.5)
        assert reply.status == 504
        assert error_of(reply)["code"] == "upstream_timeout"
        await still_answers(client, up)


async def test_a_stream_stalled_after_its_first_piece_ends_with_an_error_event_at_the_deadline(kind: Kind) -> None:
    async with upstream(kind) as up, gateway(live_config({"up": up.section()}, timeout=60)) as client:
        up.set_fault(Fault(stall_after=1))
        reply = await post(client, STREAM, timeout=0.5)
        events = stream_events(reply)
        assert reply.status == 200 and events[0][0] == "delta"
        assert events[-1][0] == "error"
        assert events[-1][1]["error"]["code"] == "upstream_timeout"
        await still_answers(client, up)


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_upstream_error_and_the_fallback_answers(kind: Kind, status: int) -> None:
    async with upstream(kind) as up, upstream(kind) as backup:
        config = live_config({"up": up.section(), "backup": backup.section()}, fallbacks=("backup",))
        async with gateway(config) as client:
            up.set_fault(Fault(status=status, error="model runner crashed"))
            reply = await post(client, timeout=5)
            assert reply.status == 200, reply.body
            assert outcomes(reply.json()["attempts"]) == ["upstream_error", "ok"]
            backup.set_fault(Fault(status=status))
            reply = await post(client, timeout=5)
            assert reply.status == 502
            error = error_of(reply)
            assert error["code"] == "upstream_error"
            assert error["details"]["status"] == status
            backup.set_fault(None)
            await still_answers(client, up)


async def test_429_retry_after_is_honoured_then_the_retry_succeeds(kind: Kind) -> None:
    retry = {"attempts": 2, "backoff_s": 0, "backoff_max_s": 0}
    async with upstream(kind) as up, gateway(live_config({"up": up.section()}, retry=retry)) as client:
        up.set_fault(Fault(status=429, error="slow down", retry_after="0", times=1))
        reply = await post(client, timeout=5)
        assert reply.status == 200, reply.body
        assert outcomes(reply.json()["attempts"]) == ["rate_limited", "ok"]
        assert up.calls == 2


async def test_429_retry_after_past_the_deadline_is_answered_at_once_with_retry_after(kind: Kind) -> None:
    retry = {"attempts": 3, "backoff_s": 0, "retry_after_max_s": 600}
    async with upstream(kind) as up, gateway(live_config({"up": up.section()}, retry=retry)) as client:
        up.set_fault(Fault(status=429, error="slow down", retry_after="120"))
        reply = await post(client, timeout=2)
        assert reply.status == 429
        assert error_of(reply)["code"] == "rate_limited"
        assert reply.headers["retry-after"] == "120"
        assert up.calls == 1  # waiting 120 s could not fit in a 2 s deadline, so no retry was made
        await still_answers(client, up)


async def test_malformed_json_is_upstream_error(kind: Kind) -> None:
    async with upstream(kind) as up, gateway(live_config({"up": up.section()})) as client:
        up.set_fault(Fault(raw=b'{"model": "fault-model", "message": {oops'))
        reply = await post(client, timeout=5)
        assert reply.status == 502
        assert error_of(reply)["code"] == "upstream_error"
        await still_answers(client, up)


@pytest.mark.parametrize("fault", [Fault(cut_after=2), Fault(malformed_after=2), Fault(error_after=2)],
                         ids=["truncated", "malformed-line", "error-line"])
async def test_broken_stream_after_text_ends_with_an_upstream_error_event(kind: Kind, fault: Fault) -> None:
    async with upstream(kind) as up, upstream(kind) as backup:
        config = live_config({"up": up.section(), "backup": backup.section()}, fallbacks=("backup",))
        async with gateway(config) as client:
            up.set_fault(fault)
            events = stream_events(await post(client, STREAM, timeout=5))
            deltas = [data["text"] for name, data in events if name == "delta"]
            assert "".join(deltas).split() == REPLY.split()[:2]
            assert events[-1][0] == "error"
            assert events[-1][1]["error"]["code"] == "upstream_error"
            # Text was already sent, so the fallback must not start a second answer.
            assert backup.calls == 0
            await still_answers(client, up)


@pytest.mark.parametrize("fault", [Fault(cut_after=0), Fault(error_after=0)], ids=["truncated", "error-line"])
async def test_broken_stream_before_any_text_goes_to_the_fallback(kind: Kind, fault: Fault) -> None:
    async with upstream(kind) as up, upstream(kind) as backup:
        config = live_config({"up": up.section(), "backup": backup.section()}, fallbacks=("backup",))
        async with gateway(config) as client:
            up.set_fault(fault)
            events = stream_events(await post(client, STREAM, timeout=5))
            name, done = events[-1]
            assert name == "done", events
            assert done["provider"] == "backup"
            assert outcomes(done["attempts"]) == ["upstream_error", "ok"]


async def test_every_fault_in_turn_leaves_a_gateway_that_answers(kind: Kind) -> None:
    faults: list[tuple[Fault, str]] = [
        (Fault(status=500), "upstream_error"),
        (Fault(status=503), "upstream_error"),
        (Fault(status=429, retry_after="1"), "rate_limited"),
        (Fault(raw=b"not json"), "upstream_error"),
        (Fault(delay=30), "upstream_timeout"),
    ]
    async with upstream(kind) as up, gateway(live_config({"up": up.section()})) as client:
        seen: list[Any] = []
        for fault, _ in faults:
            up.set_fault(fault)
            seen.append(error_of(await post(client, timeout=0.5))["code"])
            await still_answers(client, up)
        assert seen == [code for _, code in faults]
