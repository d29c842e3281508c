"""The tries of one call: each timed exactly once, and each given its own budget inside the call's deadline.

An `Attempt` is reported to clients; while it runs, its `latency_ms` holds its start (perf_counter, in ms)
and its outcome is `pending`. The first ending (ok, an error, the deadline) fixes both; later endings of the
same try (a deadline error seen again on its way out) change nothing, so no try is ever timed twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Generic, TypeVar

from service_common.retry import RetryPolicy
from shared_contracts.errors import GatewayError, UpstreamTimeout
from shared_contracts.llm import Attempt

from .guards import CIRCUIT_OPEN, is_circuit_open

T = TypeVar("T")

__all__ = [
    "ATTEMPT_TIMEOUT",
    "PENDING",
    "TryOrder",
    "attempt_budget",
    "attempt_timeout",
    "done",
    "failed",
    "moves_on",
    "pending",
    "timed_out",
]

PENDING = "pending"
# `details.reason` of a try cut by its own budget (the call's deadline still had time for a fallback).
ATTEMPT_TIMEOUT = "attempt_timeout"


def pending(provider: str, model: str) -> Attempt:
    """A try that has just started."""
    return Attempt(provider=provider, model=model, outcome=PENDING, latency_ms=perf_counter() * 1000)


def done(attempt: Attempt, outcome: str) -> None:
    """End a running try with `outcome` (`ok` or an error code); a try that has already ended is left as it is."""
    if attempt.outcome != PENDING:
        return
    attempt.outcome = outcome
    attempt.error_code = None if outcome == "ok" else outcome
    attempt.latency_ms = round(perf_counter() * 1000 - attempt.latency_ms, 3)


def failed(attempt: Attempt, err: GatewayError) -> None:
    """End a running try with `err`; a skipped call (breaker open) says so in `outcome`, `error_code` stays the code."""
    if attempt.outcome != PENDING:
        return
    done(attempt, CIRCUIT_OPEN if is_circuit_open(err) else err.code)
    attempt.error_code = err.code


def timed_out(attempts: list[Attempt], timeout: float, mode: str) -> UpstreamTimeout:
    """The whole call's deadline passed: every running try ends as `upstream_timeout`."""
    for attempt in attempts:
        done(attempt, UpstreamTimeout.code)
    return UpstreamTimeout(
        f"no answer within {timeout:g}s ({mode} mode)",
        details={"timeout_s": timeout, "attempts": attempts},
    )


def attempt_timeout(provider: str, budget: float) -> UpstreamTimeout:
    """A try ran out of its own budget; the call's deadline may still leave time for the next target."""
    return UpstreamTimeout(
        f"{provider}: no answer within this try's {budget:g}s budget",
        details={"provider": provider, "timeout_s": round(budget, 3), "reason": ATTEMPT_TIMEOUT},
    )


def attempt_budget(*, now: float, deadline: float, targets_left: int, fixed: float | None) -> float:
    """The absolute time by which a try must end: `fixed` seconds (a rule's `attempt_timeout`), else an equal
    share of what is left among the `targets_left` targets still to try (this one included); never past
    `deadline`. The last target gets all that is left."""
    if fixed is not None:
        return min(deadline, now + fixed)
    return now + (deadline - now) / max(targets_left, 1)


def moves_on(err: GatewayError) -> bool:
    """Errors where trying the same target again is pointless: go to the next one.

    An open breaker or a full queue will not change within a backoff; a try that hung until its budget ran
    out would most likely hang again, and the time is the fallbacks'.
    """
    return is_circuit_open(err) or err.code == "overloaded" or isinstance(err, UpstreamTimeout)


class TryOrder(Generic[T]):
    """The tries of one call: each target up to `retry.attempts` times, backing off inside the deadline.

        order = TryOrder(targets, retry, deadline=..., fixed=None, clock=loop.time, rng=rng)
        while (one := order.next()) is not None:
            target, until = one          # `until`: when this try must end (see `attempt_budget`)
            ...                          # on a retryable failure: wait = order.failed(err); sleep(wait)

    A plain object rather than an async generator: it runs on every call. A failure that makes trying the
    same target again pointless (`moves_on`), or a wait that would end past the deadline, moves on to the
    next target; once the deadline has passed after a failure, there is no next try.
    """

    __slots__ = ("_clock", "_deadline", "_failed", "_fixed", "_index", "_number", "_retry", "_rng", "_targets")

    def __init__(
        self,
        targets: Sequence[T],
        retry: RetryPolicy,
        *,
        deadline: float,
        fixed: float | None,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self._targets = targets
        self._retry = retry
        self._deadline = deadline
        self._fixed = fixed
        self._clock = clock
        self._rng = rng
        self._index = 0
        self._number = 0
        self._failed = False

    def next(self) -> tuple[T, float] | None:
        """The next target to try and the time by which that try must end; None when no try is left."""
        index = self._index
        if index >= len(self._targets):
            return None
        now = self._clock()
        if self._failed and now >= self._deadline:
            return None
        self._number += 1
        until = attempt_budget(
            now=now, deadline=self._deadline, targets_left=len(self._targets) - index, fixed=self._fixed
        )
        return self._targets[index], until

    def failed(self, err: GatewayError) -> float:
        """The try just made failed retryably: seconds to wait before the next one (0: the next target, now)."""
        self._failed = True
        if not moves_on(err):
            left = self._deadline - self._clock()
            wait = self._retry.delay(self._number, retry_after=err.retry_after, left=left, rng=self._rng)
            if wait is not None:
                return wait
        self._index += 1
        self._number = 0
        return 0.0
