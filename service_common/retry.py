"""Retries of one outbound call: attempts, exponential backoff (with or without jitter), `Retry-After` honoured.

Every wait stays inside the caller's deadline: `delay()` returns None when the next try could not
start before it, and the caller moves on (to a fallback, or to its error) instead of sleeping past it.
`service_common.client.HttpClient.call` runs this loop for HTTP; the LLM Gateway runs it per route target.

    for attempt in range(1, policy.attempts + 1):
        try:
            return await call()
        except GatewayError as err:
            wait = policy.delay(attempt, retry_after=err.retry_after, left=seconds_left(deadline), rng=rng)
            if not err.retryable or wait is None:
                raise
            await asyncio.sleep(wait)
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

import msgspec

__all__ = ["RetryPolicy", "parse_retry_after", "retry_after_seconds"]


class RetryPolicy(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """YAML `retry:`: tries per target (1 = no retry) and the backoff between them, in seconds.

    The n-th wait is `min(backoff_max_s, backoff_s * 2**(n-1))`, drawn uniformly below that with `jitter`
    ("full jitter"). An upstream's `Retry-After` raises it to at least that many seconds; one longer than
    `retry_after_max_s` gives up (a fallback may answer sooner) or, with `cap_retry_after`, waits the maximum.
    """

    attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    backoff_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.5
    backoff_max_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 8.0
    retry_after_max_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0
    jitter: bool = True
    cap_retry_after: bool = False

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait after failed try number `attempt` (1-based), before `Retry-After` is considered."""
        ceiling = min(self.backoff_max_s, self.backoff_s * (2 ** (attempt - 1)))
        return rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def delay(self, attempt: int, *, retry_after: float | None, left: float, rng: random.Random) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None when no try is left or it would end past `left`."""
        if attempt >= self.attempts:
            return None
        wait = self.backoff(attempt, rng)
        if retry_after is not None:
            if retry_after > self.retry_after_max_s:
                if not self.cap_retry_after:
                    return None  # the upstream asks for longer than we are willing to wait
                retry_after = self.retry_after_max_s
            wait = max(wait, retry_after)
        # Waiting must leave time for the try itself; a wait that uses up the deadline is pointless.
        if wait >= left:
            return None
        return wait


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3).

    A date in the past, or a negative number, means "now" (0); None when absent or unreadable.

    >>> parse_retry_after("3")
    3.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait from response headers: `retry-after-ms` (some cloud APIs send it) first, then `retry-after`."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"), now=now)
