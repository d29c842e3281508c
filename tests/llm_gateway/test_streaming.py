"""Streams and their readers, in process: a client that stops reading is cut at the deadline and frees the
provider's slot; a client that goes away is a cancellation, not an upstream failure.

The client is played by the test's own ASGI `send`/`receive`: a `send` that never returns is a client whose
socket buffers are full. tests/fault/test_llm_unread_streams.py does the same against a started gateway.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from llm_gateway.metrics import LLMMetrics
from tests.fakes.asgi import AsgiClient

STREAM = "/api/v1/llm/generate/stream"
BODY = {"role": "brand", "task": "profile", "messages": [{"role": "user", "content": "Describe the lamp."}]}
LONG = " ".join(f"word{i}" for i in range(200))


def app(metrics: LLMMetrics | None = None, **reply: Any) -> Any:
    config = parse_gateway_config({
        "mode": "live",
        "providers": {"up": {"class": "tests.llm_gateway._support:ReplyProvider", "replies": [LONG], **reply}},
        "resilience": {"providers": {"up": {"breaker": {"failure_threshold": 1, "open_seconds": 30},
                                            "backpressure": {"max_in_flight": 1, "max_queue": 0}}}},
        "llm_routing": {"default": {"provider": "up", "model": "m"}},
    })
    return create_app(config, metrics=metrics)


async def drive(app: Any, *, timeout: str, reads: int, leaves: bool = False) -> list[dict[str, Any]]:
    """POST a stream and read `reads` body messages; then never read again (or, with `leaves`, disconnect)."""
    body = msgspec.json.encode(BODY)
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": STREAM, "raw_path": STREAM.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"x-request-timeout", timeout.encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8100), "state": {},
    }
    sent: list[dict[str, Any]] = []
    stuck = asyncio.Event()
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": body, "more_body": False}
        await stuck.wait()
        if leaves:
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # connected, silent
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if stuck.is_set():
            await asyncio.Event().wait()  # the client's buffers are full: this write never completes
        sent.append(message)
        if sum(m["type"] == "http.response.body" for m in sent) >= reads:
            stuck.set()

    # The bound turns a regression (a stream held past its deadline) into a failure instead of a hung test.
    async with asyncio.timeout(10):
        await app(scope, receive, send)
    return sent


async def status(client: AsgiClient) -> dict[str, Any]:
    reply = await client.get("/readyz")
    assert reply.status == 200, reply.body
    return reply.json()["providers"]["up"]  # type: ignore[no-any-return]


async def test_a_client_that_stops_reading_is_cut_at_the_deadline_and_frees_the_slot() -> None:
    # Before: the deadline bounded only the wait for the upstream, so the stream held its slot (in_flight 1,
    # every other call 429/504) for as long as the client stayed, and counted as a failure when it left.
    metrics = LLMMetrics()
    gateway = app(metrics)
    async with AsgiClient(gateway) as client:
        sent = await drive(gateway, timeout="0.3", reads=3)
        assert sent[0]["status"] == 200 and sent[-1]["more_body"]  # cut: the response never completed
        outcomes = [s.labels["outcome"] for f in text_string_to_metric_families(metrics.render().decode())
                    for s in f.samples if s.name == "pdp_requests_total"]
        assert outcomes == ["stream_cut"]
        up = await status(client)
        assert up["backpressure"]["in_flight"] == 0
        assert up["breaker"] == {"state": "closed", "consecutive_failures": 0, "retry_in_s": None}
        reply = await client.post("/api/v1/llm/generate", json=BODY)
        assert reply.status == 200 and reply.json()["text"] == LONG


async def test_a_client_that_goes_away_cancels_the_stream_and_is_no_upstream_failure() -> None:
    gateway = app(hang_after=2)
    async with AsgiClient(gateway) as client:
        await drive(gateway, timeout="30", reads=2, leaves=True)
        up = await status(client)
        assert up["backpressure"]["in_flight"] == 0
        assert up["breaker"]["state"] == "closed" and up["breaker"]["consecutive_failures"] == 0


async def test_a_cut_unread_probe_frees_the_half_open_breaker() -> None:
    # A breaker lets one probe through when half-open; an unread stream must not keep that probe forever.
    gateway = app()
    async with AsgiClient(gateway) as client:
        guard = gateway.state.gateway.guards["up"]
        breaker = guard.breaker
        breaker.record_failure()  # open (threshold 1) ...
        breaker._opened_at -= 30  # ... and its open time over: half-open
        assert breaker.state == "half_open"
        await drive(gateway, timeout="0.3", reads=3)
        assert not breaker._probing
        reply = await client.post("/api/v1/llm/generate", json=BODY)
        assert reply.status == 200
        assert (await status(client))["breaker"]["state"] == "closed"


async def test_a_stream_whose_client_reads_ends_normally_after_its_deadline_error() -> None:
    # The cut applies to writes that wait; a reading client still gets the deadline's error event.
    gateway = app(hang_after=1)
    async with AsgiClient(gateway) as client:
        reply = await client.post(STREAM, json=BODY, headers={"x-request-timeout": "0.2"})
        assert reply.status == 200
        assert reply.body.rstrip().splitlines()[-2] == b"event: error"
        assert b'"upstream_timeout"' in reply.body
        up = await status(client)
        assert up["backpressure"]["in_flight"] == 0
