"""The shared reliability pieces on their own: deadline header, retry policy, circuit breaker, limiter, key hashes."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from service_common.auth import AuthSettings, hash_key, key_hashes
from service_common.backpressure import Limiter, LimiterSettings
from service_common.breaker import BreakerSettings, CircuitBreaker
from service_common.config import ConfigError
from service_common.deadline import effective_timeout, outbound_timeout_header, parse_request_timeout
from service_common.retry import RetryPolicy
from shared_contracts.errors import InvalidRequest, Overloaded, UpstreamTimeout
from tests.fault._support import ManualClock


@pytest.mark.parametrize(("raw", "seconds"), [("30", 30.0), ("2.5", 2.5), (" .5 ", 0.5), (None, None)])
def test_request_timeout_header_parses_positive_seconds(raw: str | None, seconds: float | None) -> None:
    assert parse_request_timeout(raw) == seconds


@pytest.mark.parametrize("raw", ["", "0", "-1", "abc", "1e3", "inf", "nan", "1.2.3", "١٢", "99999999", "3" * 40])
def test_bad_request_timeout_is_invalid_request_naming_the_header(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request_timeout(raw)
    assert caught.value.details["header"] == "x-request-timeout"


def test_a_caller_may_shorten_never_lengthen_the_deadline() -> None:
    assert effective_timeout(180, 5) == 5
    assert effective_timeout(5, 180) == 5
    assert effective_timeout(5, None) == 5


async def test_outbound_header_carries_what_is_left() -> None:
    deadline = asyncio.get_running_loop().time() + 2
    left = float(outbound_timeout_header(deadline)["x-request-timeout"])
    assert 0 < left <= 2
    assert outbound_timeout_header(deadline - 10) == {"x-request-timeout": "0.001"}


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(attempts=5, backoff_s=1, backoff_max_s=3)
    highs = [max(policy.backoff(n, random.Random(seed)) for seed in range(200)) for n in (1, 2, 3, 4)]
    assert 0.9 < highs[0] <= 1 and 1.9 < highs[1] <= 2 and 2.9 < highs[2] <= 3 and highs[3] <= 3


def test_retry_delay_honours_retry_after_and_never_passes_the_deadline() -> None:
    policy = RetryPolicy(attempts=3, backoff_s=0, retry_after_max_s=10)
    rng = random.Random(1)
    assert policy.delay(1, retry_after=2, left=5, rng=rng) == 2
    assert policy.delay(1, retry_after=6, left=5, rng=rng) is None  # would end past the deadline
    assert policy.delay(1, retry_after=11, left=60, rng=rng) is None  # longer than we are willing to wait
    assert policy.delay(3, retry_after=None, left=60, rng=rng) is None  # no try left
    assert policy.delay(2, retry_after=None, left=60, rng=rng) == 0


def test_breaker_opens_after_n_failures_half_opens_once_and_closes_on_success() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("up", BreakerSettings(failure_threshold=3, open_seconds=10), clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()  # type: ignore[comparison-overlap]
    assert breaker.status().retry_in_s == 10
    clock.advance(10)
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    breaker.record_failure()
    assert breaker.state == "open"
    clock.advance(10)
    assert breaker.allow()
    breaker.release()  # a cancelled probe frees the slot without a verdict
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.status().consecutive_failures == 0


def test_breaker_with_threshold_zero_never_opens() -> None:
    breaker = CircuitBreaker("up", BreakerSettings(failure_threshold=0), clock=ManualClock())
    for _ in range(50):
        breaker.record_failure()
    assert breaker.allow() and breaker.state == "closed"


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


def test_key_hashes_take_hex_hashes_and_plain_keys_and_name_a_bad_hash() -> None:
    digest = hashlib.sha256(b"k1").hexdigest()
    hashes = key_hashes(AuthSettings(api_key_sha256=[digest.upper()], api_keys=" k2 , ,k3"))
    assert hashes == {hash_key("k1"), hash_key("k2"), hash_key("k3")}
    assert key_hashes(AuthSettings()) == frozenset()
    with pytest.raises(ConfigError, match=r"auth.api_key_sha256\[0\]"):
        key_hashes(AuthSettings(api_key_sha256=["not-a-hash"]))


def test_auth_settings_repr_shows_no_key() -> None:
    shown = repr(AuthSettings(api_keys="sekrit-key-1,sekrit-key-2"))
    assert "sekrit" not in shown and "2 keys" in shown
