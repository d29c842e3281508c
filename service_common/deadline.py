"""Deadlines that travel with a request: `X-Request-Timeout: <seconds>` may shorten a call, never lengthen it.

Each service has its own configured deadline per call; a caller that has less time left says so with
the header, and the service uses the smaller of the two. A service calling the next one sends what is
left of its own deadline (`timeout_header_value`, sent by `service_common.client`), so no layer waits
longer than its caller.

    timeout = effective_timeout(route_timeout, request_timeout(request.headers))
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping

from shared_contracts.errors import InvalidRequest

__all__ = [
    "MAX_REQUEST_TIMEOUT",
    "TIMEOUT_HEADER",
    "effective_timeout",
    "parse_request_timeout",
    "request_timeout",
    "seconds_left",
    "timeout_header_value",
]

TIMEOUT_HEADER = "x-request-timeout"
# A larger value could never lengthen a deadline anyway; refusing it keeps typos visible.
MAX_REQUEST_TIMEOUT = 86_400.0
# Digits, one optional dot: "30", "2.5", ".5". No sign, exponent, "inf" or "nan".
_MAX_LENGTH = 32


def parse_request_timeout(value: str | None) -> float | None:
    """The header's seconds (a positive decimal number), None when absent; anything else is InvalidRequest.

    >>> parse_request_timeout("2.5")
    2.5
    """
    if value is None:
        return None
    text = value.strip()
    digits = text.replace(".", "", 1)
    if not text or len(text) > _MAX_LENGTH or not digits.isascii() or not digits.isdigit():
        raise _invalid(value, "must be a positive number of seconds, e.g. 30 or 2.5")
    seconds = float(text)
    if not math.isfinite(seconds) or seconds <= 0:
        raise _invalid(value, "must be greater than 0")
    if seconds > MAX_REQUEST_TIMEOUT:
        raise _invalid(value, f"must be at most {MAX_REQUEST_TIMEOUT:g}")
    return seconds


def request_timeout(headers: Mapping[str, str]) -> float | None:
    """The caller's `X-Request-Timeout` from request headers (Starlette's are case-insensitive)."""
    return parse_request_timeout(headers.get(TIMEOUT_HEADER))


def effective_timeout(configured: float, requested: float | None) -> float:
    """The call's budget: the configured one, shortened (never lengthened) by the caller's."""
    return configured if requested is None else min(configured, requested)


def seconds_left(deadline: float) -> float:
    """Seconds until the absolute `loop.time()` `deadline` (0 when past); call inside the running loop."""
    return max(0.0, deadline - asyncio.get_running_loop().time())


def timeout_header_value(deadline: float) -> str:
    """The `X-Request-Timeout` value for a call to the next service: seconds left, rounded down to milliseconds."""
    left = math.floor(seconds_left(deadline) * 1000) / 1000
    return f"{max(left, 0.001):.3f}"


def _invalid(value: str, why: str) -> InvalidRequest:
    shown = value if len(value) <= _MAX_LENGTH else value[:_MAX_LENGTH] + "..."
    return InvalidRequest(
        f"header X-Request-Timeout {why}",
        details={"header": TIMEOUT_HEADER, "value": shown},
    )
