"""Circuit breaker and backpressure of the LLM Gateway, through HTTP, against fake upstreams.

The breakers run on a hand-moved clock; in-flight calls are held by the fake's gate, never by sleeping.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_gateway.gateway import Gateway
from tests.fakes.asgi import AsgiClient
from tests.fakes.ollama import Fault
from tests.fakes.openai_compat import FakeOpenAI

from ._support import (
    KINDS,
    MODEL,
    REPLY,
    Kind,
    ManualClock,
    Upstream,
    error_of,
    gateway,
    live_config,
    outcomes,
    post,
    upstream,
)

BREAKER = {"failure_threshold": 2, "open_seconds": 30}


def _breaker_config(primary: Upstream, backup: Upstream | None) -> Any:
    providers = {"up": primary.section()} | ({"backup": backup.section()} if backup else {})
    resilience = {"default": {"breaker": BREAKER}}
    return live_config(providers, fallbacks=("backup",) if backup else (), resilience=resilience)


async def _breaker_state(client: AsgiClient, name: str = "up") -> str:
    reply = await client.get("/readyz")
    assert reply.status == 200, reply.body
    return str(reply.json()["providers"][name]["breaker"]["state"])


@pytest.mark.parametrize("kind", KINDS)
async def test_an_upstream_that_stalls_past_the_deadline_opens_the_breaker(kind: Kind) -> None:
    # The dependency that hangs is the one that matters: each stalled try runs into its budget (half of
    # the caller's deadline, with one fallback) and counts against the breaker while the fallback answers;
    # after the threshold the route stops waiting on it at all.
    async with (
        upstream(kind) as up,
        upstream(kind) as backup,
        gateway(_breaker_config(up, backup), clock=ManualClock()) as client,
    ):
        up.set_fault(Fault(delay=60))
        for _ in range(2):
            reply = await post(client, timeout=0.6)
            assert reply.status == 200 and reply.json()["provider"] == "backup"
            assert outcomes(reply.json()["attempts"]) == ["upstream_timeout", "ok"]
        assert await _breaker_state(client) == "open"
        reply = await post(client, timeout=5)
        assert reply.status == 200 and reply.json()["provider"] == "backup"
        assert outcomes(reply.json()["attempts"]) == ["circuit_open", "ok"]
        assert up.calls == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_open_breaker_skips_straight_to_the_fallback_then_half_opens(kind: Kind) -> None:
    clock = ManualClock()
    async with (
        upstream(kind) as up,
        upstream(kind) as backup,
        gateway(_breaker_config(up, backup), clock=clock) as client,
    ):
        up.set_fault(Fault(status=500))
        for _ in range(2):
            reply = await post(client, timeout=5)
            assert outcomes(reply.json()["attempts"]) == ["upstream_error", "ok"]
        assert await _breaker_state(client) == "open"

        reply = await post(client, timeout=5)
        assert reply.status == 200
        skipped, answered = reply.json()["attempts"]
        assert skipped["outcome"] == "circuit_open" and skipped["error_code"] == "provider_unavailable"
        assert answered["provider"] == "backup"
        assert up.calls == 2  # the open breaker did not call the failing upstream

        clock.advance(30)
        assert await _breaker_state(client) == "half_open"
        reply = await post(client, timeout=5)  # the one probe fails: open again
        assert outcomes(reply.json()["attempts"]) == ["upstream_error", "ok"]
        assert up.calls == 3
        assert await _breaker_state(client) == "open"

        clock.advance(30)
        up.set_fault(None)
        reply = await post(client, timeout=5)  # the probe succeeds: closed
        assert reply.json()["provider"] == "up"
        assert await _breaker_state(client) == "closed"


async def test_open_breaker_without_fallback_is_503_with_retry_after() -> None:
    clock = ManualClock()
    async with upstream("ollama") as up, gateway(_breaker_config(up, None), clock=clock) as client:
        up.set_fault(Fault(status=503))
        for _ in range(2):
            assert error_of(await post(client, timeout=5))["code"] == "upstream_error"
        clock.advance(10)
        reply = await post(client, timeout=5)
        assert reply.status == 503
        error = error_of(reply)
        assert error["code"] == "provider_unavailable"
        assert error["details"]["reason"] == "circuit_open"
        assert reply.headers["retry-after"] == "20"
        assert up.calls == 2


async def _until(condition: Any) -> None:
    # Yield to the loop until the gateway reaches the state; bounded, and no wall-clock sleeping.
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


async def test_full_queue_answers_429_overloaded_with_retry_after_and_queued_calls_finish() -> None:
    resilience = {"providers": {"up": {"backpressure": {"max_in_flight": 1, "max_queue": 1, "retry_after_s": 3}}}}
    async with FakeOpenAI(models=[MODEL], reply=REPLY, gate=asyncio.Event()) as fake:
        up = Upstream("openai", fake)
        async with gateway(live_config({"up": up.section()}, resilience=resilience)) as client:
            gw: Gateway = client.app.state.gateway
            limiter = gw.guards["up"].limiter
            assert limiter is not None
            first = asyncio.create_task(post(client, timeout=10))
            await fake.received.wait()
            queued = asyncio.create_task(post(client, timeout=10))
            await _until(lambda: limiter.queued == 1)

            reply = await post(client, timeout=10)
            assert reply.status == 429
            assert error_of(reply)["code"] == "overloaded"
            assert reply.headers["retry-after"] == "3"
            ready = await client.get("/readyz")
            assert ready.json()["providers"]["up"]["backpressure"] == {
                "in_flight": 1, "queued": 1, "max_in_flight": 1, "max_queue": 1}

            assert fake.gate is not None
            fake.gate.set()
            for task in (first, queued):
                reply = await task
                assert reply.status == 200, reply.body
            assert limiter.in_flight == 0 and limiter.queued == 0


async def test_a_queued_call_gives_up_at_its_deadline() -> None:
    resilience = {"providers": {"up": {"backpressure": {"max_in_flight": 1, "max_queue": 4}}}}
    async with FakeOpenAI(models=[MODEL], reply=REPLY, gate=asyncio.Event()) as fake:
        up = Upstream("openai", fake)
        async with gateway(live_config({"up": up.section()}, resilience=resilience)) as client:
            first = asyncio.create_task(post(client, timeout=10))
            await fake.received.wait()
            reply = await post(client, timeout=0.3)
            assert reply.status == 504
            assert error_of(reply)["code"] == "upstream_timeout"
            assert fake.gate is not None
            fake.gate.set()
            assert (await first).status == 200
            assert len(fake.chat_requests) == 1  # the queued call never reached the upstream
