"""Unread streams against a started `llm-gateway` process (issue 13, item 2).

A client that opens `/api/v1/llm/generate/stream` and never reads used to hold its provider's limiter slot
for as long as it stayed (the deadline bounded only the wait for the upstream, never the write to the
client): other calls got 429/504, and when the client finally left the stream counted as an upstream
failure. Now the write waits only until the deadline, the stream is cut there (one `stream_cut` log line),
the slot is free and the breaker has heard nothing. A client here is a raw socket with a small receive
buffer that reads nothing after its request; the upstream is the fake OpenAI-compatible server answering
a few megabytes, so the gateway's writes really block.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from tests.fakes.child import Child
from tests.fakes.openai_compat import FakeOpenAI
from tests.fakes.server import Fault

pytestmark = pytest.mark.slow

EXE = Path(sys.executable).parent / "llm-gateway"
MODEL = "local-model"
# About 8 MB of answer in 4 kB words: far more than the kernel buffers between the gateway and the client.
HUGE = " ".join(["x" * 4000] * 2000)
CONFIG = """
mode: live
timeouts: {mock: 5, live: 30}
providers:
  local:
    class: llm_gateway.providers.openai:OpenAIProvider
    base_url: ${FAKE_URL}
    key_required: false
resilience:
  providers:
    local:
      breaker: {failure_threshold: 1, open_seconds: 1}
      backpressure: {max_in_flight: 1, max_queue: 0, retry_after_s: 1}
llm_routing:
  default: {provider: local, model: local-model}
"""
BODY = {"role": "brand", "task": "profile", "messages": [{"role": "user", "content": "Describe the lamp."}]}
# Bounded waits for things that happen at the deadline: a regression fails the test instead of hanging it.
SETTLE_S = 15.0


@contextlib.asynccontextmanager
async def started(tmp_path: Path, fake: FakeOpenAI) -> AsyncIterator[Child]:
    config = tmp_path / "llm.yaml"
    config.write_text(CONFIG)
    async with Child("llm_gateway", config, {"FAKE_URL": fake.base_url}, command=[str(EXE)],
                     unset=["GENERATOR_MODE"]) as child:
        yield child


def open_unread_stream(port: int, timeout_s: float) -> socket.socket:
    """Send a stream request on a socket with a tiny receive buffer; the caller never reads from it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    payload = msgspec.json.encode(BODY)
    sock.sendall(
        b"POST /api/v1/llm/generate/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Request-Timeout: %.1f\r\nContent-Length: %d\r\n\r\n%s" % (timeout_s, len(payload), payload)
    )
    return sock


async def guard_of(child: Child) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(child.url + "/readyz") as resp:
        body = await resp.json()
    return body["providers"]["local"] if resp.status == 200 else body["error"]["details"]["guards"]["local"]


async def slot_freed(child: Child) -> None:
    """Wait (bounded) until the provider's limiter slot is free again; the unread stream held it."""
    try:
        async with asyncio.timeout(SETTLE_S):
            while (await guard_of(child))["backpressure"]["in_flight"] != 0:
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"the unread stream still holds its slot after {SETTLE_S:g} s") from None


async def generate(child: Child) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
        child.url + "/api/v1/llm/generate", json=BODY, headers={"x-request-timeout": "5"}
    ) as resp:
        return resp.status, await resp.json()


async def test_an_unread_stream_is_cut_at_the_deadline_and_frees_its_slot(tmp_path: Path) -> None:
    async with FakeOpenAI(models=[MODEL], reply=HUGE) as fake, started(tmp_path, fake) as child:
        sock = await asyncio.to_thread(open_unread_stream, child.port, 1.0)
        try:
            await slot_freed(child)
            await child.logged(b'"outcome":"stream_cut"')
            fake.reply = "short answer"
            status, answer = await generate(child)
            assert status == 200 and answer["text"] == "short answer"
        finally:
            sock.close()  # the client leaves only now: no upstream failure for the breaker either
        assert (await generate(child))[0] == 200
        breaker = (await guard_of(child))["breaker"]
        assert breaker["state"] == "closed" and breaker["consecutive_failures"] == 0
        # Issue 15: the cut is reported once, by the gateway; uvicorn no longer adds an ERROR line about it.
        assert "without completing response" not in child.log()
        assert child.log().count('"outcome":"stream_cut"') == 1


async def test_an_unread_half_open_probe_does_not_keep_the_breaker_from_closing(tmp_path: Path) -> None:
    async with FakeOpenAI(models=[MODEL], reply="short answer") as fake, started(tmp_path, fake) as child:
        fake.fault = Fault(status=500, times=1)
        status, _ = await generate(child)
        assert status == 502  # one failure opens the breaker (threshold 1) for 1 s
        async with asyncio.timeout(SETTLE_S):
            while (await guard_of(child))["breaker"]["state"] != "half_open":
                await asyncio.sleep(0.1)
        fake.reply = HUGE
        sock = await asyncio.to_thread(open_unread_stream, child.port, 1.0)  # this stream is the probe
        try:
            await slot_freed(child)
            fake.reply = "short answer"
            status, answer = await generate(child)
            # Before: 503 circuit_open for every healthy request for as long as the unread client stayed.
            assert status == 200, answer
            assert (await guard_of(child))["breaker"]["state"] == "closed"
        finally:
            sock.close()
