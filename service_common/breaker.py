"""A circuit breaker per upstream instance: after N consecutive failures it opens for T seconds, then half-opens.

closed --N failures--> open --T seconds--> half_open --probe ok--> closed
                                                     \\--probe fails--> open (T again)

While open, `allow()` is False, so callers skip the upstream at once (an LLM route goes to its
fallbacks) instead of waiting on it. Half-open lets exactly one probe through at a time. The clock is
injected, so tests move time by hand instead of sleeping.

    breaker = CircuitBreaker("local-llm", BreakerSettings(failure_threshold=5, open_seconds=30))
    if not breaker.allow():
        raise ProviderUnavailable(...)
    try:
        result = await call()
    except UpstreamError:
        breaker.record_failure()
        raise
    breaker.record_success()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Literal

import msgspec

__all__ = ["BreakerSettings", "BreakerState", "BreakerStatus", "CircuitBreaker", "Clock"]

BreakerState = Literal["closed", "open", "half_open"]
Clock = Callable[[], float]


class BreakerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """YAML: `failure_threshold` consecutive failures open the breaker for `open_seconds`; 0 disables it."""

    failure_threshold: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 5
    open_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0


class BreakerStatus(msgspec.Struct, kw_only=True):
    """What `/readyz` shows for one breaker."""

    state: BreakerState
    consecutive_failures: int
    # Seconds until an open breaker lets a probe through; None unless open.
    retry_in_s: float | None = None


class CircuitBreaker:
    """Consecutive-failure breaker for one upstream; not thread-safe (one event loop owns it)."""

    def __init__(self, name: str, settings: BreakerSettings, *, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.settings = settings
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def enabled(self) -> bool:
        """False when `failure_threshold` is 0: `allow()` is always True."""
        return self.settings.failure_threshold > 0

    @property
    def state(self) -> BreakerState:
        """`closed`, `open` (failing fast), or `half_open` (the open time is over; a probe may go)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.settings.open_seconds:
            return "open"
        return "half_open"

    def retry_in(self) -> float:
        """Seconds until an open breaker half-opens; 0 when it is not open."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.settings.open_seconds - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go now? In half-open, True once (the probe) until that probe is recorded or released."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        """The upstream answered: close the breaker."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        """The upstream failed: count it, and open (again) at the threshold or when a probe failed."""
        self._failures += 1
        if not self.enabled:
            return
        if self._probing or self._failures >= self.settings.failure_threshold:
            self._opened_at = self._clock()
        self._probing = False

    def release(self) -> None:
        """A call ended without telling anything about the upstream (cancelled, refused by us): free the probe."""
        self._probing = False

    def status(self) -> BreakerStatus:
        """The current state for health endpoints."""
        state = self.state
        return BreakerStatus(
            state=state,
            consecutive_failures=self._failures,
            retry_in_s=round(self.retry_in(), 3) if state == "open" else None,
        )
