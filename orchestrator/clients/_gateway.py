"""What both gateway clients share: the HttpClient to one gateway, its deadlines, its errors, its retries.

Timeouts: a call waits at most the gateway's own bound (`timeout_s`, its mode timeout) plus a margin, and
never past the run's `deadline` when one is given; the gateway is told the smaller budget with
`X-Request-Timeout`, so it gives up (and answers with its typed error) no later than we do. Only 429 and
503 are retried: the gateway did not start the work, so a retry cannot do it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import ClassVar, Self

from orchestrator.config import GatewayClientConfig
from service_common.auth import bearer_header
from service_common.client import HttpClient, Reply, Sleep
from service_common.retry import RetryPolicy, retry_after_seconds
from shared_contracts.errors import GatewayError, UpstreamError, UpstreamTimeout, decode_envelope, error_from_body
from shared_contracts.scenarios import SCENARIO_HEADER

__all__ = ["GatewayClient"]

# `/readyz` answers at once or not at all; a health probe must not wait a generation's bound.
_PROBE_S = 5.0


def _envelope_error(name: str, status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """The gateway's own typed error when it sent the envelope; else an upstream error keeping an excerpt."""
    retry_after = retry_after_seconds(headers)
    envelope = decode_envelope(raw)
    if envelope is not None:
        return error_from_body(envelope.error, retry_after=retry_after)
    # Not our envelope (a proxy's HTML page, a crash): keep the status and a bounded excerpt.
    return UpstreamError(
        f"{name} answered HTTP {status} without an error envelope",
        details={"gateway": name.removesuffix(" gateway"), "status": status,
                 "body": raw[:300].decode("utf-8", "replace")},
        retry_after=retry_after,
    )


class GatewayClient:
    """A client of one gateway; `async with` opens and closes its pooled session."""

    # The name errors and logs give this gateway ("llm", "media").
    gateway: ClassVar[str]
    # Whether a call may reach the gateway twice when a connection drops unanswered (a generation may,
    # a job submission may not).
    replayable: ClassVar[bool] = False

    def __init__(self, config: GatewayClientConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        # How long one call may wait: the gateway's own bound plus the margin for its typed answer to arrive.
        self.timeout_s = config.timeout_s + config.timeout_margin_s
        self.http = HttpClient(
            f"{self.gateway} gateway",
            base_url=config.base_url,
            # The key goes into the session's default headers only; it is never logged.
            headers=bearer_header(config.api_key),
            on_error=_envelope_error,
            details={"gateway": self.gateway},
            propagate_context=True,
            replayable=self.replayable,
            sleep=sleep,
        )
        self.retry = RetryPolicy(
            attempts=config.max_retries + 1,
            backoff_s=config.backoff_s,
            backoff_max_s=config.max_retry_after_s,
            retry_after_max_s=config.max_retry_after_s,
            jitter=False,
            # No fallback waits behind a gateway: a long Retry-After is waited out, up to the cap.
            cap_retry_after=True,
        )

    @classmethod
    def from_config(cls, config: GatewayClientConfig, *, sleep: Sleep = asyncio.sleep) -> Self:
        """A client built from a config section."""
        return cls(config, sleep=sleep)

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        request_id: str | None = None,
        deadline: float | None = None,
        probe: bool = False,
        scenario: str | None = None,
    ) -> Reply:
        """One call (retried on 429/503 unless `probe`), never past `deadline` (a `loop.time()`, the run's).

        Returns the 2xx reply; an error comes back typed (the gateway's envelope keeps its class). `scenario`
        is sent as `X-Mock-Scenario` (a mock gateway fails as asked; any other refuses it with 400).
        """
        now = asyncio.get_running_loop().time()
        budget = now + (_PROBE_S if probe else self.config.timeout_s)
        wait = now + (_PROBE_S if probe else self.timeout_s)
        if deadline is not None:
            if deadline <= now:
                raise UpstreamTimeout(
                    f"no time left in the run's deadline to call the {self.gateway} gateway",
                    details={"gateway": self.gateway, "path": path, "timeout_s": 0},
                )
            budget, wait = min(budget, deadline), min(wait, deadline)
        return await self.http.call(
            method, path, body=body, request_id=request_id, deadline=wait, budget=budget,
            retry=None if probe else self.retry,
            headers={SCENARIO_HEADER: scenario} if scenario is not None else None,
        )

    async def start(self) -> None:
        """Open the pooled session."""
        await self.http.start()

    async def close(self) -> None:
        """Close the pooled session."""
        await self.http.close()

    async def check_ready(self) -> None:
        """Raise a typed error unless the gateway's `/readyz` answers 2xx."""
        await self.call("GET", "/readyz", probe=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
