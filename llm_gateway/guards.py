"""Per provider instance: a circuit breaker and a backpressure limiter around every call, and their status.

A call goes: breaker allows? (else `provider_unavailable` with `details.reason = "circuit_open"`, so
the route goes straight to its fallbacks) -> a limiter slot (else 429 `overloaded`) -> the provider.
Connection failures, timeouts (a call still running at the caller's deadline too), 5xx and broken bodies
count against the breaker; any answer from the upstream (even a 4xx or an invalid document) shows it is
up; a 429 or a call cancelled before its deadline counts neither way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import msgspec

from service_common.backpressure import Limiter, LimiterSettings, LimiterStatus
from service_common.breaker import BreakerSettings, BreakerStatus, CircuitBreaker, Clock
from shared_contracts.errors import GatewayError, ProviderUnavailable, RateLimited, UpstreamError

from .providers.base import Provider

__all__ = [
    "CIRCUIT_OPEN",
    "GuardSpec",
    "ProviderGuard",
    "ProviderStatus",
    "Readiness",
    "ResilienceConfig",
    "build_guards",
    "is_circuit_open",
]

CIRCUIT_OPEN = "circuit_open"
# asyncio may run a timer this much before its time; a cancel that close to the deadline is the deadline.
_DEADLINE_SLACK_S = 0.001


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


class Readiness(msgspec.Struct, kw_only=True):
    """`GET /readyz` when ready: the mode and every guarded provider's breaker and backpressure."""

    status: str
    mode: str
    providers: dict[str, ProviderStatus]


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


@dataclass(slots=True)
class ProviderGuard:
    """The breaker and limiter of one provider instance (either may be absent)."""

    name: str
    breaker: CircuitBreaker | None
    limiter: Limiter | None

    @contextlib.asynccontextmanager
    async def call(self, deadline: float) -> AsyncIterator[None]:
        """Guard the block (one call or one whole stream): may raise before it runs, records how it ended."""
        breaker = self.breaker
        if breaker is not None and not breaker.allow():
            retry_in = breaker.retry_in()
            raise ProviderUnavailable(
                f"{self.name}: circuit open after repeated failures; not called",
                details={"provider": self.name, "reason": CIRCUIT_OPEN, "retry_in_s": round(retry_in, 3)},
                retry_after=retry_in,
            )
        async with contextlib.AsyncExitStack() as stack:
            if self.limiter is not None:
                try:
                    await stack.enter_async_context(self.limiter.slot(deadline))
                except BaseException:
                    if breaker is not None:
                        breaker.release()
                    raise
            try:
                yield
            except GatewayError as err:
                if breaker is not None:
                    self._record(breaker, _counts_as_failure(err))
                raise
            except BaseException:
                if breaker is not None:
                    # Cancelled at the deadline: the upstream stalled, the failure that matters most. Any
                    # other cancel (the client went away) tells nothing about the upstream.
                    if asyncio.get_running_loop().time() >= deadline - _DEADLINE_SLACK_S:
                        breaker.record_failure()
                    else:
                        breaker.release()
                raise
            if breaker is not None:
                breaker.record_success()

    @staticmethod
    def _record(breaker: CircuitBreaker, failed: bool | None) -> None:
        if failed is None:
            breaker.release()
        elif failed:
            breaker.record_failure()
        else:
            breaker.record_success()

    def status(self) -> ProviderStatus:
        """Current breaker state and limiter counts."""
        return ProviderStatus(
            breaker=self.breaker.status() if self.breaker is not None else None,
            backpressure=self.limiter.status() if self.limiter is not None else None,
        )


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
