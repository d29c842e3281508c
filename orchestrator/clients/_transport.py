"""One pooled HTTP session to one gateway, with the timeout, retry and error rules every call follows.

Timeouts: a call waits at most the gateway's own bound (`timeout_s`, its mode timeout) plus a margin, and
never past the run's deadline (`orchestrator.deadline`); the gateway is told the smaller budget with
`X-Request-Timeout`, so it gives up (and answers with its typed error) no later than we do.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import structlog

from orchestrator.config import GatewayClientConfig
from orchestrator.deadline import current_deadline
from service_common.auth import bearer_header
from service_common.deadline import TIMEOUT_HEADER
from service_common.tracing import outbound_headers
from shared_contracts.errors import (
    GatewayError,
    ProviderUnavailable,
    UpstreamError,
    UpstreamTimeout,
    decode_envelope,
    error_from_body,
)

__all__ = ["Reply", "Sleep", "Transport", "parse_retry_after"]

Sleep = Callable[[float], Awaitable[None]]

# Only these mean "not now, try later": the gateway did not start the work, so a retry cannot double it.
_RETRY_STATUSES = frozenset({429, 503})
_log = structlog.get_logger(component="gateway_client")


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful (2xx) answer: status, raw body and the request id the gateway echoed."""

    status: int
    body: bytes
    request_id: str | None
    headers: Mapping[str, str]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None when absent or unreadable.

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


class Transport:
    """HTTP to one gateway: one `aiohttp.ClientSession`, bounded waits, retries on 429/503 only.

    Errors come back typed: an error envelope from the gateway becomes its class (`error_from_body`, so the
    error keeps the envelope); a timeout is `UpstreamTimeout`, an unreachable gateway `ProviderUnavailable`.
    """

    def __init__(
        self,
        name: str,
        config: GatewayClientConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.timeout_s = config.timeout_s + config.timeout_margin_s
        self._session = session
        self._owns_session = session is None
        self._sleep = sleep

    async def start(self) -> None:
        """Open the pooled session (idempotent)."""
        if self._session is None:
            # The key goes into the session's default headers only; it is never logged.
            headers = bearer_header(self.config.api_key)
            # No session-wide timeout: each call sets its own, so nothing falls back to aiohttp's 300 s default.
            self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=None))
            self._owns_session = True

    async def close(self) -> None:
        """Close the session if this transport opened it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session; `start()` must have run."""
        if self._session is None:
            raise RuntimeError(f"{self.name} client used before start()")
        return self._session

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        request_id: str | None = None,
        timeout_s: float | None = None,
        retry: bool = True,
    ) -> Reply:
        """Send one request, retrying 429/503 as the config allows; return the 2xx reply or raise typed."""
        retries_left = self.config.max_retries if retry else 0
        attempt = 0
        while True:
            attempt += 1
            status, raw, headers = await self._send(method, path, body, request_id, timeout_s)
            if 200 <= status < 300:
                return Reply(status, raw, headers.get("x-request-id") or request_id, headers)
            retry_after = parse_retry_after(headers.get("retry-after"))
            err = self._error(status, raw, retry_after)
            if status not in _RETRY_STATUSES or retries_left <= 0:
                raise err
            retries_left -= 1
            delay = retry_after if retry_after is not None else self.config.backoff_s * 2 ** (attempt - 1)
            delay = min(delay, self.config.max_retry_after_s)
            left = _seconds_left()
            if left is not None and delay >= left:
                # Waiting would pass the run's deadline: the gateway's answer is the best we can give.
                raise err
            _log.info("gateway_retry", gateway=self.name, path=path, status=status, attempt=attempt, delay_s=delay)
            await self._sleep(delay)

    async def _send(
        self, method: str, path: str, body: bytes | None, request_id: str | None, timeout_s: float | None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        # The current request's id and W3C trace context, so the gateways' logs join this service's.
        headers = outbound_headers()
        if body is not None:
            headers["content-type"] = "application/json"
        if request_id:
            headers["x-request-id"] = request_id
        budget = self.config.timeout_s if timeout_s is None else timeout_s
        timeout_s = budget + self.config.timeout_margin_s if timeout_s is None else timeout_s
        left = _seconds_left()
        if left is not None:
            if left <= 0:
                raise UpstreamTimeout(
                    f"no time left in the run's deadline to call the {self.name} gateway",
                    details={"gateway": self.name, "path": path, "timeout_s": 0},
                )
            budget, timeout_s = min(budget, left), min(timeout_s, left)
        headers[TIMEOUT_HEADER] = f"{max(0.001, math.floor(budget * 1000) / 1000):.3f}"
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                async with self.session.request(method, self.base_url + path, data=body, headers=headers) as resp:
                    raw = await resp.read()
                    return resp.status, raw, _lower(resp.headers)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{self.name} gateway did not answer within {timeout_s:g} s",
                details={"gateway": self.name, "path": path, "timeout_s": timeout_s},
            ) from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnavailable(
                f"{self.name} gateway unreachable: {type(exc).__name__}",
                details={"gateway": self.name, "url": self.base_url, "after_ms": _ms_since(started)},
            ) from exc

    def _error(self, status: int, raw: bytes, retry_after: float | None) -> GatewayError:
        envelope = decode_envelope(raw)
        if envelope is not None:
            return error_from_body(envelope.error, retry_after=retry_after)
        # Not our envelope (a proxy's HTML page, a crash): keep the status and a bounded excerpt.
        return UpstreamError(
            f"{self.name} gateway answered HTTP {status} without an error envelope",
            details={"gateway": self.name, "status": status, "body": raw[:300].decode("utf-8", "replace")},
            retry_after=retry_after,
        )

    async def get_json_ok(self, path: str, *, timeout_s: float = 5.0) -> dict[str, Any]:
        """GET `path` once (no retry); the error is typed like any call's."""
        reply = await self.call("GET", path, timeout_s=timeout_s, retry=False)
        try:
            value = msgspec.json.decode(reply.body)
        except msgspec.DecodeError:
            return {}
        return value if isinstance(value, dict) else {}


def _seconds_left() -> float | None:
    deadline = current_deadline()
    return None if deadline is None else deadline - asyncio.get_running_loop().time()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
