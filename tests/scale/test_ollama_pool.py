"""An Ollama pool of two fake instances behind the LLM Gateway (real HTTP on loopback): load is split, the
model already loaded is preferred, a per-instance cap holds, and the pool survives one instance dying."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from llm_gateway.providers.ollama_pool import OllamaPool
from tests.fakes.ollama import FakeOllama, Fault
from tests.fault._support import MODEL, REPLY, gateway, live_config, post

pytestmark = pytest.mark.slow
POOL = "llm_gateway.providers.ollama_pool:OllamaPool"


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[tuple[FakeOllama, FakeOllama]]:
    async with FakeOllama(models=[MODEL], reply=REPLY) as x, FakeOllama(models=[MODEL], reply=REPLY) as y:
        yield x, y


def _pool(x: FakeOllama, y: FakeOllama, **knobs: Any) -> dict[str, Any]:
    return {"ollama": {"class": POOL, "base_url": f"{x.base_url},{y.base_url}", "probe_s": 0.05, **knobs}}


async def _until(check: Any) -> None:
    async with asyncio.timeout(10):
        while not check():
            await asyncio.sleep(0.02)


async def test_concurrent_calls_are_split_and_the_cap_holds(pair: tuple[FakeOllama, FakeOllama]) -> None:
    x, y = pair
    for fake in pair:
        fake.fault = Fault(delay=0.2)  # each call stays in flight a while, so load decides where the next goes
    async with gateway(live_config(_pool(x, y, max_in_flight=2))) as client:
        replies = await asyncio.gather(*(post(client) for _ in range(8)))
        pool = client.app.state.gateway.providers["ollama"]
        assert isinstance(pool, OllamaPool)
        peaks = [m.in_flight for m in pool.members]
    assert [r.status for r in replies] == [200] * 8
    assert len(x.chat_requests) == len(y.chat_requests) == 4
    assert peaks == [0, 0]  # every slot given back


async def test_the_instance_with_the_model_loaded_is_preferred(pair: tuple[FakeOllama, FakeOllama]) -> None:
    x, y = pair
    y.loaded.append(MODEL)
    async with gateway(live_config(_pool(x, y))) as client:
        pool = client.app.state.gateway.providers["ollama"]
        await _until(lambda: pool.instances()[y.base_url]["models_loaded"] == [MODEL])
        for _ in range(3):
            assert (await post(client)).status == 200
    assert len(y.chat_requests) == 3 and not x.chat_requests


async def test_the_pool_survives_one_instance_dying(pair: tuple[FakeOllama, FakeOllama]) -> None:
    x, y = pair
    for fake in pair:
        fake.fault = Fault(delay=0.1)
    async with gateway(live_config(_pool(x, y, down_s=60))) as client:
        assert [r.status for r in await asyncio.gather(*(post(client) for _ in range(4)))] == [200] * 4
        assert x.chat_requests and y.chat_requests
        await x.stop()  # gone: connections refused from now on
        before = len(y.chat_requests)
        replies = [await post(client) for _ in range(4)]
        pool = client.app.state.gateway.providers["ollama"]
        status, ready = (await client.get("/readyz")).status, (await client.get("/readyz")).json()
    assert [r.status for r in replies] == [200] * 4, [r.json() for r in replies]
    assert all(r.json()["text"].split() == REPLY.split() for r in replies)
    assert len(y.chat_requests) == before + 4
    assert pool.instances()[x.base_url]["up"] is False and pool.instances()[y.base_url]["up"] is True
    assert status == 200 and ready["instances"]["ollama"][x.base_url]["up"] is False
