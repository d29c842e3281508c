"""Per provider instance: a circuit breaker and a backpressure limiter around every call, and their status.

A call goes: breaker allows? (else `provider_unavailable` with `details.reason = "circuit_open"`, so
the route goes straight to its fallbacks) -> a limiter slot (else 429 `overloaded`) -> the provider.
Connection failures, timeouts (a call still running at the caller's deadline too), 5xx and broken bodies
count against the breaker; any answer from the upstream (even a 4xx or an invalid document) shows it is
up; a 429, a call cancelled before its deadline, and a stream its client stopped reading (closed at a
piece already received) count neither way: a client that goes away is not an upstream failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

import msgspec

from service_common.backpressure import Limiter, LimiterSettings, LimiterStatus
from service_common.breaker import BreakerSettings, BreakerStatus, CircuitBreaker, Clock
from shared_contracts.errors import GatewayError, ProviderUnavailable, RateLimited, UpstreamError

from .providers.base import Provider

__all__ = [
    "CIRCUIT_OPEN",
    "DEADLINE_SLACK_S",
    "GuardSpec",
    "ProviderGuard",
    "ProviderStatus",
    "ResilienceConfig",
    "build_guards",
    "is_circuit_open",
]

CIRCUIT_OPEN = "circuit_open"
# asyncio may run a timer this much before its time; an end that close to the deadline is the deadline.
DEADLINE_SLACK_S = 0.001


class GuardSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One provider instance's backpressure and breaker settings."""

    backpressure: LimiterSettings = LimiterSettings()
    breaker: BreakerSettings = BreakerSettings()


class ResilienceConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """YAML `resilience:`: `default` for every live provider, `providers.<name>` replacing it for one instance."""

    default: GuardSpec = GuardSpec()
    providers: dict[str, GuardSpec] = {}


class ProviderStatus(msgspec.Struct, kw_only=True):
    """A guarded provider's breaker and limiter, as `/readyz` shows them."""

    breaker: BreakerStatus | None
    backpressure: LimiterStatus | None


def is_circuit_open(err: GatewayError) -> bool:
    """Was `err` raised because the provider's breaker is open (no call was made)?"""
    return isinstance(err, ProviderUnavailable) and err.details.get("reason") == CIRCUIT_OPEN


def _counts_as_failure(err: GatewayError) -> bool | None:
    """True: the upstream is failing; False: it answered; None: tells nothing (429, our own refusal)."""
    if isinstance(err, RateLimited):
        return None
    if isinstance(err, UpstreamError | ProviderUnavailable):
        return err.retryable
    return False


def _record(breaker: CircuitBreaker, failed: bool | None) -> None:
    if failed is None:
        breaker.release()
    elif failed:
        breaker.record_failure()
    else:
        breaker.record_success()


@dataclass(slots=True)
class ProviderGuard:
    """The breaker and limiter of one provider instance (either may be absent)."""

    name: str
    breaker: CircuitBreaker | None
    limiter: Limiter | None

    def call(self, deadline: float, *, slot_by: float | None = None) -> _GuardedCall:
        """Guard the block (one call or one whole stream): may raise before it runs, records how it ended.

        A cancel at `deadline` is a stalled upstream; waiting for a limiter slot ends at `slot_by` (default
        `deadline`), e.g. a streamed try's budget while its deadline is the whole call's.
        """
        return _GuardedCall(self, deadline, deadline if slot_by is None else slot_by)

    def status(self) -> ProviderStatus:
        """Current breaker state and limiter counts."""
        return ProviderStatus(
            breaker=self.breaker.status() if self.breaker is not None else None,
            backpressure=self.limiter.status() if self.limiter is not None else None,
        )


class _GuardedCall:
    """`async with guard.call(deadline)`: a plain class, not a generator, since it wraps every upstream call."""

    __slots__ = ("_deadline", "_guard", "_slot", "_slot_by")

    def __init__(self, guard: ProviderGuard, deadline: float, slot_by: float) -> None:
        self._guard = guard
        self._deadline = deadline
        self._slot_by = slot_by
        self._slot: contextlib.AbstractAsyncContextManager[None] | None = None

    async def __aenter__(self) -> None:
        guard = self._guard
        breaker = guard.breaker
        if breaker is not None and not breaker.allow():
            retry_in = breaker.retry_in()
            raise ProviderUnavailable(
                f"{guard.name}: circuit open after repeated failures; not called",
                details={"provider": guard.name, "reason": CIRCUIT_OPEN, "retry_in_s": round(retry_in, 3)},
                retry_after=retry_in,
            )
        if guard.limiter is not None:
            slot = guard.limiter.slot(self._slot_by)
            try:
                await slot.__aenter__()
            except BaseException:
                if breaker is not None:
                    breaker.release()
                raise
            self._slot = slot

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        breaker = self._guard.breaker
        try:
            if breaker is None:
                pass
            elif exc is None:
                breaker.record_success()
            elif isinstance(exc, GatewayError):
                _record(breaker, _counts_as_failure(exc))
            elif isinstance(exc, GeneratorExit):
                # A stream closed at a piece the upstream had sent: its reader stopped, the upstream was fine.
                breaker.release()
            # Cancelled at the deadline: the upstream stalled, the failure that matters most. Any other
            # cancel (the client went away) tells nothing about the upstream.
            elif asyncio.get_running_loop().time() >= self._deadline - DEADLINE_SLACK_S:
                breaker.record_failure()
            else:
                breaker.release()
        finally:
            if self._slot is not None:
                await self._slot.__aexit__(exc_type, exc, tb)


def build_guards(
    config: ResilienceConfig, providers: Mapping[str, Provider], *, clock: Clock = time.monotonic
) -> dict[str, ProviderGuard]:
    """A guard per live provider (and per provider named in `config.providers`); none where nothing is on."""
    guards: dict[str, ProviderGuard] = {}
    for name, provider in providers.items():
        spec = config.providers.get(name)
        if spec is None:
            if provider.kind != "live":
                continue  # the mock never fails; it pays nothing for guards unless asked to
            spec = config.default
        breaker = CircuitBreaker(name, spec.breaker, clock=clock) if spec.breaker.failure_threshold > 0 else None
        limiter = Limiter(name, spec.backpressure) if spec.backpressure.max_in_flight > 0 else None
        if breaker is not None or limiter is not None:
            guards[name] = ProviderGuard(name, breaker, limiter)
    return guards
