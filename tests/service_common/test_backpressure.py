"""The backpressure limiter: a bounded FIFO queue in front of an in-flight cap."""

from __future__ import annotations

import asyncio

import pytest

from service_common.backpressure import Limiter, LimiterSettings
from shared_contracts.errors import Overloaded, UpstreamTimeout


async def test_limiter_queues_in_order_refuses_when_full_and_frees_slots() -> None:
    limiter = Limiter("up", LimiterSettings(max_in_flight=1, max_queue=2, retry_after_s=4))
    deadline = asyncio.get_running_loop().time() + 5
    order: list[str] = []
    release = asyncio.Event()

    async def worker(name: str) -> None:
        async with limiter.slot(deadline):
            order.append(name)
            await release.wait()

    tasks = [asyncio.create_task(worker(n)) for n in "abc"]
    while limiter.queued < 2:
        await asyncio.sleep(0)
    assert limiter.in_flight == 1
    with pytest.raises(Overloaded) as caught:
        await worker("d")
    assert caught.value.retry_after == 4
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert limiter.in_flight == 0 and limiter.queued == 0


async def test_limiter_waiter_times_out_and_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    limiter = Limiter("up", LimiterSettings(max_in_flight=1, max_queue=5))
    loop = asyncio.get_running_loop()
    hold = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot(loop.time() + 5):
            await hold.wait()

    task = asyncio.create_task(holder())
    while limiter.in_flight == 0:
        await asyncio.sleep(0)
    with pytest.raises(UpstreamTimeout):
        async with limiter.slot(loop.time() + 0.05):
            pass
    waiter = asyncio.create_task(limiter.slot(loop.time() + 5).__aenter__())
    while limiter.queued == 0:
        await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    hold.set()
    await task
    assert limiter.in_flight == 0 and limiter.queued == 0
