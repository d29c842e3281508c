"""The circuit breaker: opens after N consecutive failures, half-opens for one probe, closes on success."""

from __future__ import annotations

from service_common.breaker import BreakerSettings, CircuitBreaker
from tests.fault._support import ManualClock


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
