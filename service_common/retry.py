"""Retries of one upstream call: attempts, exponential backoff with full jitter, and `Retry-After` honoured.

Every wait stays inside the caller's deadline: `delay()` returns None when the next try could not
start before it, and the caller moves on (to a fallback, or to its error) instead of sleeping past it.

    for attempt in range(1, policy.attempts + 1):
        try:
            return await call()
        except GatewayError as err:
            wait = policy.delay(attempt, retry_after=err.retry_after, left=seconds_left(deadline), rng=rng)
            if not err.retryable or attempt == policy.attempts or wait is None:
                raise
            await asyncio.sleep(wait)
"""

from __future__ import annotations

import random
from typing import Annotated

import msgspec

__all__ = ["RetryPolicy"]


class RetryPolicy(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """YAML `retry:`: tries per target (1 = no retry) and the backoff between them, in seconds.

    The n-th wait is uniform in [0, min(backoff_max_s, backoff_s * 2**(n-1))] ("full jitter"); an
    upstream's `Retry-After` raises it to at least that many seconds (capped by `retry_after_max_s`).
    """

    attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    backoff_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.5
    backoff_max_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 8.0
    retry_after_max_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The jittered wait after failed try number `attempt` (1-based)."""
        ceiling = min(self.backoff_max_s, self.backoff_s * (2 ** (attempt - 1)))
        return rng.uniform(0.0, ceiling)

    def delay(self, attempt: int, *, retry_after: float | None, left: float, rng: random.Random) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None when no try is left or it would end past `left`."""
        if attempt >= self.attempts:
            return None
        wait = self.backoff(attempt, rng)
        if retry_after is not None:
            if retry_after > self.retry_after_max_s:
                return None  # the upstream asks for longer than we are willing to wait
            wait = max(wait, retry_after)
        # Waiting must leave time for the try itself; a wait that uses up the deadline is pointless.
        if wait >= left:
            return None
        return wait
