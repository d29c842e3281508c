"""What `GET /readyz` answers when the gateway is ready."""

from __future__ import annotations

import msgspec

from .guards import ProviderStatus

__all__ = ["Readiness"]


class Readiness(msgspec.Struct, kw_only=True):
    """`GET /readyz` when ready: the mode and every guarded provider's breaker and backpressure."""

    status: str
    mode: str
    providers: dict[str, ProviderStatus]
